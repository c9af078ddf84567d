// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFindKernel(t *testing.T) {
	boot := t.TempDir()
	for _, k := range []string{"6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-57-cloud-amd64", "6.1.0-60-rt-amd64",
		"6.12.9+deb12-amd64", "6.12.117+deb12-amd64", "6.10.1-amd64"} {
		if err := os.WriteFile(filepath.Join(boot, "vmlinuz-"+k), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ series, want string }{
		{"6.1", "6.1.0-57-amd64"},
		{"6.12", "6.12.117+deb12-amd64"},
		{"6.10", "6.10.1-amd64"},
	} {
		path, rel, err := FindKernel(boot, tt.series)
		if err != nil || rel != tt.want || path != filepath.Join(boot, "vmlinuz-"+tt.want) {
			t.Errorf("FindKernel(%s) = %q, %q, %v; want release %s", tt.series, path, rel, err, tt.want)
		}
	}
	if _, _, err := FindKernel(boot, "6.6"); !errors.Is(err, ErrNoKernel) {
		t.Errorf("FindKernel(6.6) = %v, want %v", err, ErrNoKernel)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"6.1.0-9-amd64", "6.1.0-57-amd64", -1},
		{"6.12.117+deb12-amd64", "6.12.9+deb12-amd64", 1},
		{"6.1.0-57-amd64", "6.1.0-57-amd64", 0},
		{"6.1.0-57-amd64", "6.1.0-57a-amd64", -1},
	} {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestConfigTOML(t *testing.T) {
	c := Config{Format: "kdump", Compression: "none", Exclude: []string{"none"},
		Targets: []Target{DeadSFTP, Disk, NoDisk}, Failure: "poweroff", MinFree: "0"}
	want := `[collect]
format = "kdump"
compression = "none"
exclude = ["none"]

[[target]]
url = "sftp://root@10.0.2.2:2223/x/ssh/crash"
identity = "/x/ssh/id_ed25519"
known_hosts = "/x/ssh/known_hosts"

[[target]]
device = "LABEL=crashdump"
path = "/var/crash"
wait_device = "60s"

[[target]]
device = "LABEL=nothere"
wait_device = "2s"

[action]
final = "reboot"
failure = "poweroff"
deadline = "10m"

[retention]
min_free = "0"
`
	if diff := cmp.Diff(want, c.TOML("/x/ssh")); diff != "" {
		t.Errorf("TOML (-want, +got):\n%s", diff)
	}
}

func TestCmdline(t *testing.T) {
	sc := Scenario{Guest: Guest{Crashkernel: "128M", Fill: 1400, Force: true, CrashOnCPU0: true}, Fault: Fault{KillAfter: 10 << 20}}
	want := "console=ttyS0 crashkernel=128M panic=-1 loglevel=6 ukdump.e2e.fill=1400 ukdump.e2e.force=1 ukdump.e2e.crash_cpu0=1 ukdump.e2e.kill_after=10485760"
	if got := strings.Join(sc.cmdline(), " "); got != want {
		t.Errorf("cmdline() = %q; want %q", got, want)
	}
	if got := strings.Join(Scenario{}.cmdline(), " "); got != "console=ttyS0 crashkernel=96M panic=-1 loglevel=6" {
		t.Errorf("default cmdline() = %q", got)
	}
}

func TestParseLsP(t *testing.T) {
	out := "/131074/040755/0/0/.//\n/131073/040755/0/0/..//\n/131075/040700/0/0/ukdump-20261201T215223Z//\n" +
		"/131076/100600/0/0/vmcore-dmesg.txt/26663/\n\n"
	want := []debugfsEntry{{name: "ukdump-20261201T215223Z", dir: true}, {name: "vmcore-dmesg.txt", reg: true}}
	if diff := cmp.Diff(want, parseLsP(out), cmp.AllowUnexported(debugfsEntry{})); diff != "" {
		t.Errorf("parseLsP (-want, +got):\n%s", diff)
	}
}

func TestConsole(t *testing.T) {
	log := filepath.Join(t.TempDir(), "serial.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	c := &console{w: f}
	for _, s := range []string{"one\r\ntw", "o\r\n", "three"} {
		c.Write([]byte(s))
	}
	c.Close()
	c.Close()
	var got []string
	for _, l := range c.lines {
		got = append(got, l.Text)
	}
	if diff := cmp.Diff([]string{"one", "two", "three"}, got); diff != "" {
		t.Errorf("console lines (-want, +got):\n%s", diff)
	}
	b, _ := os.ReadFile(log)
	if !regexp.MustCompile(`^(\d+\.\d{6} (one|two|three)\n){3}$`).Match(b) {
		t.Errorf("serial log = %q, want SECONDS.MICROS LINE lines", b)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"4G": 4 << 30, "96M": 96 << 20, "512K": 512 << 10, "4096": 4096} {
		if got, err := ParseSize(s); got != want || err != nil {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "G", "-1M", "1T"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = nil error, want one", s)
		}
	}
}

// fakeResult is a finished boot with a dump directory of files (nil content:
// absent) and a fake out/ukdump printing info.
func fakeResult(t *testing.T, files map[string][]byte, info string) *Result {
	t.Helper()
	root := t.TempDir()
	r := &Result{Run: &Run{Root: root, Dir: root, Release: "6.1.0-57-amd64"}, N: 1, Dump: filepath.Join(root, "dump"),
		DumpName: "ukdump-20261201T215223Z", Where: "/var/crash on the disk"}
	if err := os.MkdirAll(filepath.Join(root, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.Dump, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "out/ukdump"), []byte("#!/bin/sh\necho '"+info+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if b == nil {
			continue
		}
		r.Saved = append(r.Saved, n)
		if err := os.WriteFile(r.File(n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	r.Console = []Line{{now, "[    3.1] sysrq: Trigger a crash"}, {now.Add(12 * time.Second), "ukdump: result=saved target=x"}}
	return r
}

// TestChecksFail gives each check what it must refuse.
func TestChecksFail(t *testing.T) {
	core := []byte("not really a core")
	sum := sha256.Sum256(core)
	status := make([]byte, 512)
	binary.LittleEndian.PutUint32(status[kdumpStatusOffset:], 0x1) // compressed, not incomplete
	for _, tt := range []struct {
		name  string
		files map[string][]byte
		info  string
		check Check
		want  string
	}{
		{"console", nil, "", ConsoleHas(`result=failed`), "no console line matches"},
		{"console lacks", nil, "", ConsoleLacks(`ukdump: result=`), "want no line matching"},
		{"files", map[string][]byte{"vmcore": core, "ukdump.log": {}}, "", Files("vmcore", "ukdump.log", "manifest.json"),
			"ukdump.log missing or empty in /var/crash on the disk/ukdump-20261201T215223Z\nmanifest.json missing"},
		{"absent", map[string][]byte{"vmcore": core}, "", Absent("vmcore"), "the unfinished dump was renamed"},
		{"file has", map[string][]byte{"ukdump.log": []byte("saving to x")}, "", FileHas("ukdump.log", "copy failed after"), "does not have"},
		{"sha256", map[string][]byte{"vmcore": core, "manifest.json": []byte(`{"sha256": "00"}`)}, "", SHA256("vmcore"), "sha256 mismatch"},
		{"sha256 pending, sent away", map[string][]byte{"vmcore": core, "manifest.json": []byte(`{"sha256_pending": true, "complete": true, "file": "vmcore", "target": "sftp://dumps@127.0.0.1/crash"}`)}, "",
			SHA256("vmcore"), "sha256 pending for a dump sent to sftp://dumps@127.0.0.1/crash"},
		{"sha256 pending, wrong size", map[string][]byte{"vmcore": core, "manifest.json": []byte(`{"sha256_pending": true, "complete": true, "file": "vmcore", "size": 1}`)}, "",
			SHA256("vmcore"), "changed after the capture"},
		{"manifest", map[string][]byte{"manifest.json": []byte(`{"file": "vmcore", "complete": true, "error": ""}`)}, "",
			ManifestIncomplete("vmcore.incomplete", "no space left on device"),
			`manifest.json says "complete": true, want false` + "\n" + `manifest.json names "vmcore", want vmcore.incomplete` + "\n" +
				`manifest.json's error is "", want it to match "no space left on device"`},
		{"kdump info", map[string][]byte{"vmcore": core}, `{"format": "elf", "codec": "zstd", "complete": false}`, KdumpFile("vmcore", "zlib"),
			`ukdump info sees a "elf" file, want kdump`},
		{"marked incomplete", map[string][]byte{"vmcore.incomplete": status}, `{"format": "kdump", "complete": true}`,
			MarkedIncomplete("vmcore.incomplete", "kdump"), "does not say vmcore.incomplete is incomplete"},
		{"status bit", map[string][]byte{"vmcore.incomplete": status}, `{"format": "kdump", "complete": false}`,
			MarkedIncomplete("vmcore.incomplete", "kdump"), "the kdump header's status is 0x1, without DUMP_DH_COMPRESSED_INCOMPLETE (0x8)"},
		{"journal", nil, "", JournalReplayed(), "was not replayed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fakeResult(t, tt.files, tt.info)
			err := tt.check(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check = %v; want an error with %q", err, tt.want)
			}
		})
	}
	// And passes what is right.
	r := fakeResult(t, map[string][]byte{"vmcore": core, "manifest.json": []byte(`{"sha256": "` + hex.EncodeToString(sum[:]) + `"}`)}, "")
	for _, c := range []Check{SHA256("vmcore"), ConsoleHas(`result=saved`), ConsoleLacks(`result=failed`), Files("vmcore"), Absent("vmcore.incomplete")} {
		if err := c(r); err != nil {
			t.Errorf("check = %v; want nil", err)
		}
	}
	// A local disk's dump, its sha256 left to the next boot.
	pending := fmt.Sprintf(`{"sha256_pending": true, "complete": true, "file": "vmcore", "size": %d, "target": "/dev/vdb:/var/crash"}`, len(core))
	if err := SHA256("vmcore")(fakeResult(t, map[string][]byte{"vmcore": core, "manifest.json": []byte(pending)}, "")); err != nil {
		t.Errorf("SHA256 of a pending dump = %v; want nil", err)
	}
	r.Fsck = &Fsck{Status: 4, Log: "e2fsck.txt"}
	if err := JournalReplayed()(r); err == nil {
		t.Errorf("JournalReplayed()(status 4) = nil; want an error")
	}
	if d, ok := r.PanicToSaved(); !ok || d != 12*time.Second {
		t.Errorf("PanicToSaved() = %v, %v; want 12s, true", d, ok)
	}
}

// TestToolChecksFail gives the checks that run crash, makedumpfile, readelf
// and ukdump a file that is no dump.
func TestToolChecksFail(t *testing.T) {
	for _, tool := range []string{"crash", "makedumpfile", "readelf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/deps.sh (it installs crash, makedumpfile and binutils)", tool)
		}
	}
	junk := []byte(strings.Repeat("not a dump\n", 1000))
	for _, tt := range []struct {
		name  string
		check Check
		want  string
	}{
		{"elf core", ELFCore("vmcore"), "vmcore is not an ELF core"},
		{"elf flags", MarkedIncomplete("vmcore", "elf"), "e_flags is not 0x1"},
		{"makedumpfile", MakedumpfileDmesg("vmcore", "sysrq triggered crash"), "makedumpfile --dump-dmesg does not find"},
		{"crash", CrashOSRelease("vmcore"), "want 6.1.0-57-amd64"},
		{"reassemble", Reassemble("vmcore", "vmcore.kdump"), "ukdump reassemble failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fakeResult(t, map[string][]byte{"vmcore": junk}, "")
			// The fake ukdump fails as reassemble does on a file that is
			// not a flattened stream.
			if err := os.WriteFile(r.ukdump(), []byte("#!/bin/sh\necho not flattened >&2\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tt.check(r); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check = %v; want an error with %q", err, tt.want)
			}
		})
	}
}
