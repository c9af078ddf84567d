// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/capture"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/manifest"
	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// fakeRoot is a capture kernel's root: /proc/vmcore (synthetic), /proc/cmdline,
// the config, a fake sysfs listing vdb, and dev/vdb, an ext4 image labelled
// "crashdump". Mounting is recorded, not done: the mount point directory
// stands in for the mounted file system.
type fakeRoot struct {
	dir    string
	vmcore []byte
	mu     sync.Mutex
	mounts []string
	loaded []string
}

func newFakeRoot(t *testing.T, config string, withVmcore bool) *fakeRoot {
	t.Helper()
	r := &fakeRoot{dir: t.TempDir()}
	for _, d := range []string{"proc/self", "sys/kernel", "sys/class/block/vdb", "dev", "etc/ukdump", "lib/modules/6.1.0-test/kernel"} {
		if err := os.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(r.dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/cmdline", "console=ttyS0 reset_devices nr_cpus=1 irqpoll panic=10 elfcorehdr=0x7f000000\n")
	write("dev/null", "")
	write("proc/mounts", "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\ndevtmpfs /dev devtmpfs rw 0 0\n")
	write("sys/class/block/vdb/size", "16384\n")
	write("sys/class/block/vdb/uevent", "MAJOR=254\nMINOR=16\nDEVNAME=vdb\nDEVTYPE=disk\n")
	write(layout.ConfigPath, config)
	write(layout.ModulesLoadPath, "lib/modules/6.1.0-test/kernel/a.ko\nlib/modules/6.1.0-test/kernel/b.ko\n")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "crashdump", filepath.Join(r.dir, "dev/vdb"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 (install e2fsprogs: scripts/deps.sh): %v: %s", err, out)
	}
	if withVmcore {
		im, err := vmcoretest.Core{Segments: [][2]uint64{{0x100000, 3 << 20}}}.WriteFile(filepath.Join(r.dir, "proc/vmcore"))
		if err != nil {
			t.Fatal(err)
		}
		r.vmcore = make([]byte, im.Size())
		im.ReadAt(r.vmcore, 0)
	}
	return r
}

func (r *fakeRoot) env(console *bytes.Buffer) capture.Env {
	return capture.Env{
		Root:    r.dir,
		Console: console,
		Version: "test",
		Mount: func(src, dst, fstype string, flags uintptr, data string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.mounts = append(r.mounts, fmt.Sprintf("%s %s %s", strings.TrimPrefix(src, r.dir), strings.TrimPrefix(dst, r.dir), fstype))
			return nil
		},
		Unmount: func(string, int) error { return nil },
		LoadModule: func(p string) error {
			r.loaded = append(r.loaded, strings.TrimPrefix(p, r.dir))
			return nil
		},
	}
}

const diskConfig = `
[collect]
format = "elf"
exclude = ["none"]

[[target]]
device = "LABEL=crashdump"
path = "/var/crash"
wait_device = "300ms"

[action]
final = "poweroff"
failure = "halt"
`

func TestCaptureSaved(t *testing.T) {
	r := newFakeRoot(t, diskConfig, true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved || o.Action != "poweroff" || o.Err != nil {
		t.Fatalf("Run = %+v, want saved and poweroff; console:\n%s", o, console.String())
	}
	if want := []string{"/dev/vdb /mnt/target0 ext4"}; fmt.Sprint(r.mounts) != fmt.Sprint(want) {
		t.Errorf("mounts = %q, want %q", r.mounts, want)
	}
	if want := "[/lib/modules/6.1.0-test/kernel/a.ko /lib/modules/6.1.0-test/kernel/b.ko]"; fmt.Sprint(r.loaded) != want {
		t.Errorf("modules loaded = %v, want %v", r.loaded, want)
	}
	// CRASHTIME from VMCOREINFO names the directory; the host is not in a synthetic core.
	if o.Dir != "ukdump-20251123T103456Z" {
		t.Errorf("Dir = %q", o.Dir)
	}
	dir := filepath.Join(r.dir, "mnt/target0/var/crash", o.Dir)
	got, err := os.ReadFile(filepath.Join(dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, r.vmcore) {
		t.Errorf("saved vmcore differs from /proc/vmcore")
	}
	if _, err := os.Stat(filepath.Join(dir, "vmcore.incomplete")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vmcore.incomplete still exists: %v", err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "vmcore"): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Errorf("mode of %s = %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
	var m capture.Manifest
	mj, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	m = hashedAtBoot(t, dir, m)
	sum := sha256.Sum256(r.vmcore)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(r.vmcore)) || !m.Complete {
		t.Errorf("manifest = %+v, want sha256 %x size %d complete", m, sum, len(r.vmcore))
	}
	if m.KernelRelease != "6.1.0-test-amd64" || m.Source != "/proc/vmcore" || m.CPUs != 2 || m.Version != "test" || m.CrashTimeFrom != "VMCOREINFO CRASHTIME" {
		t.Errorf("manifest = %+v", m)
	}
	log, err := os.ReadFile(filepath.Join(dir, "ukdump.log"))
	if err != nil || !strings.Contains(string(log), "saved 3.0 MiB") {
		t.Errorf("ukdump.log = %q, %v; want the save logged", log, err)
	}
	if !strings.Contains(console.String(), "ukdump: result=saved ") {
		t.Errorf("console has no result line:\n%s", console.String())
	}
}

func TestCaptureMountsFS(t *testing.T) {
	r := newFakeRoot(t, diskConfig, false)
	os.Remove(filepath.Join(r.dir, "proc/mounts"))
	var console bytes.Buffer
	capture.Run(r.env(&console))
	// proc/self exists in the fake root, so only /sys and /dev are mounted.
	if want := "[sysfs /sys sysfs devtmpfs /dev devtmpfs]"; fmt.Sprint(r.mounts) != want {
		t.Errorf("mounts = %v, want %v", r.mounts, want)
	}
}

func TestCaptureTargetMissing(t *testing.T) {
	r := newFakeRoot(t, strings.Replace(diskConfig, "LABEL=crashdump", "LABEL=nosuchdisk", 1), true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultFailed || o.Action != "halt" {
		t.Fatalf("Run = %+v, want failed and the failure action halt", o)
	}
	if !strings.Contains(o.Err.Error(), `LABEL="nosuchdisk"`) || !strings.Contains(console.String(), "ukdump: result=failed") {
		t.Errorf("Err = %v; console:\n%s", o.Err, console.String())
	}
}

func TestCaptureFallback(t *testing.T) {
	cfg := `
[[target]]
device = "UUID=01234567-89ab-cdef-0123-456789abcdef"
wait_device = "100ms"
[[target]]
device = "/dev/vdb"
`
	r := newFakeRoot(t, cfg, true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved || o.Action != "reboot" || !strings.Contains(o.Target, "/dev/vdb") {
		t.Fatalf("Run = %+v, want saved on the second target; console:\n%s", o, console.String())
	}
	if !strings.Contains(console.String(), "target 0 failed") {
		t.Errorf("the failed first target is not logged:\n%s", console.String())
	}
}

func TestCaptureNoDump(t *testing.T) {
	r := newFakeRoot(t, diskConfig, false)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultNoDump || o.Action != "poweroff" {
		t.Fatalf("Run = %+v, want nodump and the final action", o)
	}
	if !strings.Contains(console.String(), "not a kdump capture kernel") {
		t.Errorf("console does not say why:\n%s", console.String())
	}
	if len(r.mounts) != 0 {
		t.Errorf("mounted %v with no dump to save", r.mounts)
	}
}

func TestCaptureOldmem(t *testing.T) {
	r := newFakeRoot(t, diskConfig, false)
	mem, hdr := vmcoretest.Oldmem()
	if err := os.WriteFile(filepath.Join(r.dir, "dev/oldmem"), mem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "proc/cmdline"), fmt.Appendf(nil, "console=ttyS0 elfcorehdr=%#x\n", hdr), 0o644); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v; console:\n%s", o, console.String())
	}
	got, err := os.ReadFile(filepath.Join(r.dir, "mnt/target0/var/crash", o.Dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	// The saved core holds the old memory at the PT_LOADs.
	if !bytes.Contains(got, mem[0x300800:0x300800+4096]) {
		t.Errorf("saved core does not contain the oldmem PT_LOAD bytes")
	}
}

func TestCaptureBadConfig(t *testing.T) {
	r := newFakeRoot(t, "[[target]]\nurl = \"ftp://x/y\"\n", true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultFailed || o.Action != "reboot" || !strings.Contains(o.Err.Error(), `target[0].url`) {
		t.Fatalf("Run = %+v, want failed, reboot, and the field named", o)
	}
}

func TestCaptureCmdlineOverride(t *testing.T) {
	r := newFakeRoot(t, strings.Replace(diskConfig, "LABEL=crashdump", "LABEL=nosuchdisk", 1), true)
	if err := os.WriteFile(filepath.Join(r.dir, "proc/cmdline"), []byte("console=ttyS0 ukdump.target=LABEL=crashdump:/dumps ukdump.action=shell\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved || o.Action != "shell" {
		t.Fatalf("Run = %+v; console:\n%s", o, console.String())
	}
	if _, err := os.Stat(filepath.Join(r.dir, "mnt/target0/dumps", o.Dir, "vmcore")); err != nil {
		t.Error(err)
	}
}

func TestCaptureDeadline(t *testing.T) {
	cfg := strings.Replace(diskConfig, `wait_device = "300ms"`, `wait_device = "1m"`, 1)
	cfg = strings.Replace(cfg, "LABEL=crashdump", "LABEL=late", 1) + "deadline = \"200ms\"\n"
	r := newFakeRoot(t, cfg, true)
	var console bytes.Buffer
	start := time.Now()
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultFailed || o.Action != "halt" || !strings.Contains(o.Err.Error(), "deadline") {
		t.Fatalf("Run = %+v, want failed by the deadline", o)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Run took %s with a 200ms deadline", el)
	}
}

// runHanging runs a capture with a 100ms deadline whose step set up by hang
// never returns (until the test ends).
func runHanging(t *testing.T, grace time.Duration, hang func(env *capture.Env, block <-chan struct{})) capture.Outcome {
	t.Helper()
	r := newFakeRoot(t, diskConfig+"deadline = \"100ms\"\n", true)
	var console bytes.Buffer
	env := r.env(&console)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	hang(&env, block)
	env.Grace = grace
	return capture.Run(env)
}

func TestCaptureHungStep(t *testing.T) {
	// A step that never returns and knows no deadline.
	o := runHanging(t, 100*time.Millisecond, func(env *capture.Env, block <-chan struct{}) {
		env.LoadModule = func(string) error { <-block; return nil }
	})
	if o.Result != capture.ResultFailed || o.Action != "halt" || !strings.Contains(o.Err.Error(), "hung") {
		t.Fatalf("Run = %+v, want failed as hung", o)
	}
}

// A mount that never returns (a disk that stopped answering) ends at the
// capture's deadline as that target's failure, before the hung-capture
// guard.
func TestCaptureMountHangs(t *testing.T) {
	o := runHanging(t, 10*time.Second, func(env *capture.Env, block <-chan struct{}) {
		env.Mount = func(string, string, string, uintptr, string) error { <-block; return nil }
	})
	if o.Result != capture.ResultFailed || o.Action != "halt" {
		t.Fatalf("Run = %+v, want failed", o)
	}
	for _, w := range []string{"target 0", "mount did not return", "capture deadline of 100ms passed", "not answering"} {
		if !strings.Contains(o.Err.Error(), w) {
			t.Errorf("Run's error %q does not say %q", o.Err, w)
		}
	}
	if strings.Contains(o.Err.Error(), "hung") {
		t.Errorf("Run's error %q: the hung-capture guard ended it, want the mount's own bound", o.Err)
	}
}

func TestCapturePanicRecovered(t *testing.T) {
	r := newFakeRoot(t, diskConfig, true)
	var console bytes.Buffer
	env := r.env(&console)
	env.LoadModule = func(string) error { panic("boom") }
	o := capture.Run(env)
	if o.Result != capture.ResultFailed || o.Action != "halt" || !strings.Contains(o.Err.Error(), "boom") {
		t.Fatalf("Run = %+v, want the panic turned into the failure action", o)
	}
}

func TestCaptureNoSpace(t *testing.T) {
	r := newFakeRoot(t, diskConfig+"[retention]\nmin_free = \"1TiB\"\n", true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultFailed || !strings.Contains(o.Err.Error(), "not enough space") {
		t.Fatalf("Run = %+v, want failed for lack of space", o)
	}
}

func TestCaptureRetention(t *testing.T) {
	// Two hosts share the target: only web1's oldest go, after the new dump.
	r := newFakeRoot(t, "host = \"web1\"\n"+diskConfig+"[retention]\nkeep = 2\n", true)
	base := filepath.Join(r.dir, "mnt/target0/var/crash")
	old := []string{"web1-20240101T000000Z", "web1-20250101T000000Z", "web1-20230101T000000Z", "web2-20220101T000000Z"}
	for _, d := range append(old, "lost+found") {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v", o)
	}
	want := fmt.Sprint([]string{"lost+found", "web1-20250101T000000Z", o.Dir, "web2-20220101T000000Z"})
	if got := fmt.Sprint(dirNames(t, base)); got != want {
		t.Errorf("after retention: %v, want %v", got, want)
	}
	if log, _ := os.ReadFile(filepath.Join(base, o.Dir, "ukdump.log")); !bytes.Contains(log, []byte("removed web1-20230101T000000Z, web1-20240101T000000Z")) {
		t.Errorf("ukdump.log does not say what retention removed:\n%s", log)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// keep = 1 and a copy that fails: the old dump is kept.
func TestCaptureRetentionFailedCopy(t *testing.T) {
	r := newFakeRoot(t, "host = \"web1\"\n"+diskConfig+"[retention]\nkeep = 1\n", true)
	first := filepath.Join(r.dir, "first")
	if err := os.MkdirAll(filepath.Join(first, "web1-20240101T000000Z"), 0o700); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	env := r.env(&console)
	env.NewTarget = func(i int, tc config.Target) target.Target {
		return &failingTarget{dir: first, limit: len(r.vmcore) / 2, seen: func(string) {}}
	}
	o := capture.Run(env)
	if o.Result != capture.ResultFailed {
		t.Fatalf("Run = %+v, want failed", o)
	}
	names := dirNames(t, first)
	if len(names) != 2 || names[0] != "web1-20240101T000000Z" {
		t.Errorf("after a failed copy with keep = 1: %v, want the old dump and the failed one", names)
	}
}

func TestCaptureKdumpDefault(t *testing.T) {
	cfg := strings.Replace(diskConfig, "format = \"elf\"\nexclude = [\"none\"]\n", "", 1) // the defaults: kdump, zstd, zero pages
	r := newFakeRoot(t, cfg, true)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v; console:\n%s", o, console.String())
	}
	dir := filepath.Join(r.dir, "mnt/target0/var/crash", o.Dir)
	f, err := os.Open(filepath.Join(dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kf, err := kdumpfile.Open(f)
	if err != nil {
		t.Fatalf("the saved vmcore is not a kdump file: %v", err)
	}
	if kf.Codec() != config.DefaultCompression || kf.Incomplete() {
		t.Errorf("codec %s, incomplete %v; want %s, complete", kf.Codec(), kf.Incomplete(), config.DefaultCompression)
	}
	var m capture.Manifest
	mj, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	m = hashedAtBoot(t, dir, m)
	data, _ := os.ReadFile(filepath.Join(dir, "vmcore"))
	sum := sha256.Sum256(data)
	// A synthetic core has no mem_map: -d 31 keeps the classes, with a warning.
	if m.Format != "kdump" || m.Compression != config.DefaultCompression || m.DumpLevel != 31 || m.Pages.Total != 768 || m.Pages.Zero == 0 || len(m.Warnings) == 0 ||
		m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(data)) {
		t.Errorf("manifest = %+v (file %d bytes, sha256 %x)", m, len(data), sum)
	}
}

// A panic before the config is read (here: mounting /proc) still ends in a
// failure action: the whole capture runs inside the guard.
func TestCapturePanicInSetup(t *testing.T) {
	r := newFakeRoot(t, diskConfig, true)
	if err := os.RemoveAll(filepath.Join(r.dir, "proc/self")); err != nil { // so /proc gets mounted
		t.Fatal(err)
	}
	var console bytes.Buffer
	env := r.env(&console)
	env.Mount = func(src, dst, fstype string, flags uintptr, data string) error { panic("mount " + fstype) }
	o := capture.Run(env)
	if o.Result != capture.ResultFailed || o.Action != "reboot" || !strings.Contains(o.Err.Error(), "mount proc") {
		t.Fatalf("Run = %+v, want the panic turned into the default failure action (reboot)", o)
	}
	if !strings.Contains(console.String(), "ukdump: result=failed") {
		t.Errorf("no final result line on the console:\n%s", console.String())
	}
}

// failingTarget is a local directory whose vmcore.incomplete fails with
// ENOSPC after limit bytes, as a disk that fills up.
type failingTarget struct {
	dir   string
	limit int
	seen  func(dir string)
}

func (f *failingTarget) String() string { return "failing " + f.dir }

func (f *failingTarget) Open(context.Context) (target.Dir, error) {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	return failingDir{target.LocalDir(f.dir), f.limit, f.seen}, nil
}

type failingDir struct {
	target.Dir
	limit int
	seen  func(dir string) // the dump directory, when the dump starts
}

func (d failingDir) Free() (int64, error) { return 1 << 40, nil }

func (d failingDir) Create(name string) (target.File, error) {
	f, err := d.Dir.Create(name)
	if err != nil || !strings.HasSuffix(name, "/vmcore.incomplete") {
		return f, err
	}
	dir := strings.TrimSuffix(name, "/vmcore.incomplete")
	return &failingFile{File: f, left: d.limit, onFirst: func() { d.seen(dir) }}, nil
}

type failingFile struct {
	target.File
	left    int
	onFirst func() // called at the first write
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.onFirst != nil {
		f.onFirst()
		f.onFirst = nil
	}
	if len(p) > f.left {
		n, _ := f.File.Write(p[:f.left])
		f.left = 0
		return n, syscall.ENOSPC
	}
	f.left -= len(p)
	return f.File.Write(p)
}

// The copy fails half-way on the first target: its side files say so, and
// the second target saves the dump.
func TestCaptureFirstTargetFailsHalfway(t *testing.T) {
	cfg := strings.Replace(diskConfig, "[action]", "[[target]]\ndevice = \"LABEL=crashdump\"\npath = \"/second\"\nwait_device = \"300ms\"\n\n[action]", 1)
	r := newFakeRoot(t, cfg, true)
	var console bytes.Buffer
	env := r.env(&console)
	first := filepath.Join(r.dir, "first")
	env.NewTarget = func(i int, tc config.Target) target.Target {
		if i == 0 {
			return &failingTarget{dir: first, limit: len(r.vmcore) / 2, seen: func(dir string) {
				// As the dump starts, a manifest and a log already say
				// it is under way: a capture killed now leaves them.
				var m capture.Manifest
				mj, err := os.ReadFile(filepath.Join(first, dir, "manifest.json"))
				if err != nil || json.Unmarshal(mj, &m) != nil || m.Complete || !strings.Contains(m.Error, "stopped while writing") || len(mj) < 64<<10 {
					t.Errorf("manifest.json before the dump (%d bytes, %v): %+v; want one saying it is under way, padded to 64 KiB", len(mj), err, m)
				}
				if log, err := os.ReadFile(filepath.Join(first, dir, "ukdump.log")); err != nil || !bytes.Contains(log, []byte("saving to")) {
					t.Errorf("ukdump.log before the dump: %v", err)
				}
			}}
		}
		return nil // the disk the config names
	}
	o := capture.Run(env)
	if o.Result != capture.ResultSaved || o.Target != "disk LABEL=crashdump path /second" {
		t.Fatalf("Run = %+v, want saved by the second target; console:\n%s", o, console.String())
	}
	if !strings.Contains(console.String(), "target 0 failed") || !strings.Contains(console.String(), "no space left on device") {
		t.Errorf("the console does not say why target 0 failed:\n%s", console.String())
	}
	dir0 := filepath.Join(first, o.Dir)
	fi, err := os.Stat(filepath.Join(dir0, "vmcore.incomplete"))
	if err != nil || fi.Size() != int64(len(r.vmcore)/2) {
		t.Errorf("first target's vmcore.incomplete: %v (%v), want the %d bytes written", fi, err, len(r.vmcore)/2)
	}
	if _, err := os.Stat(filepath.Join(dir0, "vmcore")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first target has a vmcore: %v", err)
	}
	var m capture.Manifest
	mj, err := os.ReadFile(filepath.Join(dir0, "manifest.json"))
	if err != nil {
		t.Fatalf("the first target has no manifest: %v", err)
	}
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	if m.Complete || m.File != "vmcore.incomplete" || !strings.Contains(m.Error, "no space left on device") {
		t.Errorf("first target's manifest: complete %v, file %q, error %q", m.Complete, m.File, m.Error)
	}
	if log, err := os.ReadFile(filepath.Join(dir0, "ukdump.log")); err != nil || !strings.Contains(string(log), "copy failed") {
		t.Errorf("first target's ukdump.log: %v\n%s", err, log)
	}
	got, err := os.ReadFile(filepath.Join(r.dir, "mnt/target1/second", o.Dir, "vmcore"))
	if err != nil || !bytes.Equal(got, r.vmcore) {
		t.Errorf("the second target's vmcore (%v) differs from /proc/vmcore", err)
	}
}

// A test crash (ukdump test loads the capture kernel with ukdump.test=1) is
// marked in its manifest.
func TestCaptureTestCrash(t *testing.T) {
	r := newFakeRoot(t, diskConfig, true)
	if err := os.WriteFile(filepath.Join(r.dir, "proc/cmdline"), []byte("console=ttyS0 elfcorehdr=0x7f000000 ukdump.test=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, layout.MachineIDPath), []byte("0123abcd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v; console:\n%s", o, console.String())
	}
	m, err := manifest.Read(filepath.Join(r.dir, "mnt/target0/var/crash", o.Dir, manifest.Name))
	if err != nil || !m.Test || m.MachineID != "0123abcd" {
		t.Errorf("manifest of a test crash: test = %v, machine_id %q (%v), want true and the image's machine id", m.Test, m.MachineID, err)
	}
}

// hashedAtBoot checks that the capture left the sha256 of a dump on a local
// disk pending, and returns the manifest as the next boot's ukdump status
// completes it (manifest.FillSHA256): the sha256 filled, pending cleared,
// the rest as the capture wrote it.
func hashedAtBoot(t *testing.T, dir string, m capture.Manifest) capture.Manifest {
	t.Helper()
	if !m.SHA256Pending || m.SHA256 != "" {
		t.Errorf("capture's manifest: sha256 %q, sha256_pending %v; want \"\", true (a local disk's dump is hashed at the next boot)", m.SHA256, m.SHA256Pending)
	}
	filled, done, err := manifest.FillSHA256(dir)
	if err != nil || !done {
		t.Fatalf("FillSHA256(%s) = %v, %v; want done", dir, done, err)
	}
	again, err := manifest.Read(filepath.Join(dir, manifest.Name))
	if err != nil {
		t.Fatal(err)
	}
	if again.SHA256 != filled.SHA256 || again.SHA256Pending || again.Size != m.Size || again.CrashTime != m.CrashTime || again.Host != m.Host {
		t.Errorf("manifest after FillSHA256 = %+v, want %+v with sha256 %s", again, m, filled.SHA256)
	}
	if _, done, err := manifest.FillSHA256(dir); done || err != nil {
		t.Errorf("FillSHA256 again = %v, %v; want nothing to do", done, err)
	}
	return again
}
