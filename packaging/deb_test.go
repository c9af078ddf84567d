// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build deb

// The package test (make deb-check, part of make test): it builds the .deb
// from out/ (make all), runs lintian on it and checks what dpkg-deb lists
// and what the files say. It needs dpkg-deb and lintian (scripts/deps.sh).

package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/version"
)

// epoch is the test packages' SOURCE_DATE_EPOCH.
var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestDeb(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "lintian"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/deps.sh installs it): %v", tool, err)
		}
	}
	ctx := context.Background()
	l := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	// A copy of make all's binaries: a make all running meanwhile (the
	// tree is shared) does not change what is checked.
	bin := t.TempDir()
	for _, b := range []string{"ukdump", "bb", "bb-disk"} {
		data, err := os.ReadFile(filepath.Join("..", "out", b))
		if err != nil {
			t.Fatalf("%v (make deb-check runs make all first)", err)
		}
		if err := os.WriteFile(filepath.Join(bin, b), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deb, err := Build(ctx, l, Options{Root: "..", BinDir: bin, OutDir: t.TempDir(), Epoch: epoch})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	wantVersion := UpstreamVersion(version.Version) + "-1"
	if got, want := filepath.Base(deb), "ukdump_"+wantVersion+"_amd64.deb"; got != want {
		t.Errorf("Build = %s, want %s", got, want)
	}

	t.Run("lintian", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, "lintian", "--info", deb).CombinedOutput()
		t.Logf("lintian %s:\n%s", deb, out)
		var errs []string
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "E: ") {
				errs = append(errs, strings.TrimSpace(line))
			}
		}
		if len(errs) > 0 {
			t.Errorf("lintian reports errors:\n%s", strings.Join(errs, "\n"))
		} else if err != nil {
			t.Errorf("lintian %s = %v", deb, err)
		}
	})

	t.Run("contents", func(t *testing.T) {
		// dpkg-deb -c: every file the package promises, with its mode, all
		// root:root and of the epoch (with gzip -n, what makes the same
		// tree give the same .deb).
		want := map[string]string{
			"./usr/bin/ukdump":                           "-rwxr-xr-x",
			"./usr/lib/ukdump/bb":                        "-rwxr-xr-x",
			"./usr/lib/ukdump/bb-disk":                   "-rwxr-xr-x",
			"./lib/systemd/system/ukdump.service":        "-rw-r--r--",
			"./lib/systemd/system/ukdump-report.service": "-rw-r--r--",
			"./etc/ukdump/ukdump.toml":                   "-rw-r--r--",
			"./etc/kernel/postinst.d/ukdump":             "-rwxr-xr-x",
			"./etc/kernel/postrm.d/ukdump":               "-rwxr-xr-x",
			"./usr/share/doc/ukdump/copyright":           "-rw-r--r--",
			"./usr/share/doc/ukdump/changelog.Debian.gz": "-rw-r--r--",
			"./usr/share/man/man1/ukdump.1.gz":           "-rw-r--r--",
			"./usr/share/lintian/overrides/ukdump":       "-rw-r--r--",
			"./var/crash/":                               "drwxr-xr-x",
			"./var/lib/ukdump/":                          "drwxr-xr-x",
		}
		list := exec.CommandContext(ctx, "dpkg-deb", "-c", deb)
		list.Env = append(os.Environ(), "TZ=UTC")
		out, err := list.Output()
		if err != nil {
			t.Fatalf("dpkg-deb -c %s = %v", deb, err)
		}
		wantTime := epoch.Format("2006-01-02 15:04")
		got := map[string]string{}
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			if len(f) < 6 {
				t.Errorf("dpkg-deb -c line %q: want MODE OWNER SIZE DATE TIME PATH", line)
				continue
			}
			mode, owner, name := f[0], f[1], f[5]
			if owner != "root/root" {
				t.Errorf("dpkg-deb -c: %s is owned by %s, want root/root", name, owner)
			}
			if tm := f[3] + " " + f[4]; tm != wantTime {
				t.Errorf("dpkg-deb -c: %s is of %s, want the epoch %s", name, tm, wantTime)
			}
			if mode[0] == 'd' {
				if _, ok := want[name]; !ok {
					continue // a parent directory
				}
			}
			got[name] = mode
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("dpkg-deb -c %s: (-want +got)\n%s", deb, diff)
		}
	})

	t.Run("fields", func(t *testing.T) {
		f := fields(t, run(t, "dpkg-deb", "-f", deb))
		for k, v := range map[string]string{
			"Package": "ukdump", "Version": wantVersion, "Architecture": "amd64",
			"Section": "admin", "Priority": "optional", "Maintainer": DefaultMaintainer,
		} {
			if f[k] != v {
				t.Errorf("dpkg-deb -f %s %s = %q, want %q", deb, k, f[k], v)
			}
		}
		// Static Go binaries, and scripts that use only Essential packages
		// (dash, coreutils, debianutils' ischroot, init-system-helpers).
		for _, k := range []string{"Depends", "Pre-Depends"} {
			if v, ok := f[k]; ok {
				t.Errorf("dpkg-deb -f %s %s = %q, want none", deb, k, v)
			}
		}
		synopsis, long, _ := strings.Cut(f["Description"], "\n")
		if synopsis == "" || len(synopsis) > 80 || len(long) < 200 {
			t.Errorf("dpkg-deb -f %s Description = %q, want a synopsis of at most 80 characters and a long description", deb, f["Description"])
		}
		var binKiB int64
		for _, b := range []string{"ukdump", "bb", "bb-disk"} {
			st, err := os.Stat(filepath.Join(bin, b))
			if err != nil {
				t.Fatal(err)
			}
			binKiB += st.Size() / 1024
		}
		if n := atoi(f["Installed-Size"]); n < binKiB || n > binKiB+200 {
			t.Errorf("dpkg-deb -f %s Installed-Size = %q, want the KiB of the binaries (%d) and a little more", deb, f["Installed-Size"], binKiB)
		}
	})

	ctl := untar(t, "--ctrl-tarfile", deb)
	t.Run("control", func(t *testing.T) {
		want := "/etc/ukdump/ukdump.toml\n/etc/kernel/postinst.d/ukdump\n/etc/kernel/postrm.d/ukdump\n"
		if got := string(ctl["./conffiles"].data); got != want {
			t.Errorf("conffiles = %q, want %q", got, want)
		}
		for _, s := range []string{"./postinst", "./prerm", "./postrm"} {
			if ctl[s].mode != 0o755 {
				t.Errorf("%s mode = %o, want 755", s, ctl[s].mode)
			}
		}
		if !strings.Contains(string(ctl["./md5sums"].data), "  usr/bin/ukdump\n") {
			t.Errorf("md5sums = %q, want a line for usr/bin/ukdump", ctl["./md5sums"].data)
		}
	})

	files := untar(t, "--fsys-tarfile", deb)
	t.Run("binaries", func(t *testing.T) {
		for path, src := range map[string]string{
			"./usr/bin/ukdump": "ukdump", "./usr/lib/ukdump/bb": "bb", "./usr/lib/ukdump/bb-disk": "bb-disk",
		} {
			want, err := os.ReadFile(filepath.Join(bin, src))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[path].data, want) {
				t.Errorf("%s differs from %s", path, src)
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		// The default: kdump to /var/crash on the builder's own file
		// system (no device), everything else as it is.
		var c struct {
			Collect struct{ Format string }
			Target  []map[string]any
		}
		if _, err := toml.Decode(string(files["./etc/ukdump/ukdump.toml"].data), &c); err != nil {
			t.Fatalf("etc/ukdump/ukdump.toml: %v", err)
		}
		if c.Collect.Format != "kdump" {
			t.Errorf("collect.format = %q, want kdump", c.Collect.Format)
		}
		if len(c.Target) != 1 || c.Target[0]["path"] != "/var/crash" || c.Target[0]["device"] != nil {
			t.Errorf("targets = %v, want one, path /var/crash without device", c.Target)
		}
	})

	t.Run("units", func(t *testing.T) {
		for _, tt := range []struct {
			unit string
			want map[string][]string
		}{
			{"ukdump.service", map[string][]string{
				"RequiresMountsFor": {"/var/lib/ukdump /var/crash /boot"}, "After": {"local-fs.target"},
				"Type": {"oneshot"}, "RemainAfterExit": {"yes"},
				"ExecStart": {"/usr/bin/ukdump load"}, "ExecStop": {"/usr/bin/ukdump unload"},
				"WantedBy": {"multi-user.target"}, "ConditionKernelCommandLine": nil,
			}},
			{"ukdump-report.service", map[string][]string{
				"After": {"ukdump.service local-fs.target"}, "Type": {"oneshot"},
				"ExecStart": {"/usr/bin/ukdump status"}, "StandardOutput": {"journal+console"},
				"WantedBy": {"multi-user.target"},
			}},
		} {
			u := unit(files["./lib/systemd/system/"+tt.unit].data)
			for k, want := range tt.want {
				if got := u[k]; !slices.Equal(got, want) {
					t.Errorf("%s %s= %q, want %q", tt.unit, k, got, want)
				}
			}
		}
	})

	t.Run("scripts", func(t *testing.T) {
		scripts := map[string][]byte{
			"etc/kernel/postinst.d/ukdump": files["./etc/kernel/postinst.d/ukdump"].data,
			"etc/kernel/postrm.d/ukdump":   files["./etc/kernel/postrm.d/ukdump"].data,
		}
		for _, s := range Scripts {
			scripts["DEBIAN/"+s] = ctl["./"+s].data
		}
		for name, data := range scripts {
			cmd := exec.CommandContext(ctx, "sh", "-n")
			cmd.Stdin = bytes.NewReader(data)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("sh -n %s = %v: %s", name, err, out)
			}
		}
		for name, want := range map[string]string{
			"etc/kernel/postinst.d/ukdump": `/usr/bin/ukdump build --kver "$release"`,
			"etc/kernel/postrm.d/ukdump":   `rm -f "/var/lib/ukdump/ukdump-$release.img" "/var/lib/ukdump/ukdump-$release.img.json"`,
			"DEBIAN/postinst":              "crashkernel=256M to GRUB_CMDLINE_LINUX in /etc/default/grub",
			"DEBIAN/postrm":                "rm -f /var/lib/ukdump/ukdump*.img /var/lib/ukdump/ukdump*.img.json",
		} {
			if !bytes.Contains(scripts[name], []byte(want)) {
				t.Errorf("%s does not contain %q", name, want)
			}
		}
		for line := range strings.Lines(string(scripts["DEBIAN/postrm"])) {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "/var/crash") {
				t.Errorf("DEBIAN/postrm: %q: the dumps in /var/crash are never removed", line)
			}
		}
	})

	t.Run("docs", func(t *testing.T) {
		zr, err := gzip.NewReader(bytes.NewReader(files["./usr/share/doc/ukdump/changelog.Debian.gz"].data))
		if err != nil {
			t.Fatalf("changelog.Debian.gz: %v", err)
		}
		changelog, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("changelog.Debian.gz: %v", err)
		}
		if want := "ukdump (" + wantVersion + ") unstable; urgency=medium\n"; !strings.HasPrefix(string(changelog), want) {
			t.Errorf("changelog starts %q, want %q", changelog[:min(len(changelog), 80)], want)
		}
		if want := " -- " + DefaultMaintainer + "  Tue, 01 Dec 2026 00:00:00 +0000\n"; !strings.HasSuffix(string(changelog), want) {
			t.Errorf("changelog does not end with %q", want)
		}

		// Every Go module linked into a program is in the copyright file.
		copyright := string(files["./usr/share/doc/ukdump/copyright"].data)
		if !strings.HasPrefix(copyright, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
			t.Errorf("copyright is not DEP-5: %q", copyright[:min(len(copyright), 80)])
		}
		// The busybox's commands are the Makefile's BB_CMDS.
		cmds := strings.Fields(runIn(t, "..", "make", "-s", "--no-print-directory",
			"--eval", "deb-check-bbcmds: ; @echo $(BB_CMDS)", "deb-check-bbcmds"))
		mods := runIn(t, "..", "go", append([]string{"list", "-deps", "-tags", "goshsmall,grpcnotrace,ukdump_capture",
			"-f", "{{with .Module}}{{.Path}}{{end}}", "./cmds/ukdump"}, cmds...)...)
		for m := range strings.Lines(mods) {
			m = strings.TrimSpace(m)
			if m == "" || m == "github.com/ukdump/ukdump" {
				continue
			}
			// A major version suffix (lz4/v4) is not part of the name.
			if want := "vendor/" + majorSuffix.ReplaceAllString(m, "") + "/*"; !strings.Contains(copyright, want) {
				t.Errorf("copyright has no stanza for %s, a module linked into the binaries", want)
			}
		}
	})

}

// tWriter sends the builder's log to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func run(t *testing.T, name string, args ...string) string { return runIn(t, "", name, args...) }

func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s = %v: %s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func atoi(s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// fields parses dpkg-deb -f's control fields; a continued field's lines
// are joined with "\n" (Description).
func fields(t *testing.T, out string) map[string]string {
	t.Helper()
	f := map[string]string{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") && last != "" {
			f[last] += "\n" + line
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("dpkg-deb -f: line %q is not a field", line)
		}
		last = k
		f[k] = strings.TrimSpace(v)
	}
	return f
}

var majorSuffix = regexp.MustCompile(`/v[0-9]+$`)

var unitLine = regexp.MustCompile(`^([A-Za-z]+)=(.*)$`)

// unit reads a systemd unit's settings, every value of each key.
func unit(data []byte) map[string][]string {
	u := map[string][]string{}
	for line := range strings.Lines(string(data)) {
		if m := unitLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			u[m[1]] = append(u[m[1]], m[2])
		}
	}
	return u
}

type entry struct {
	mode int64
	data []byte
}

// untar reads dpkg-deb --ctrl-tarfile or --fsys-tarfile of deb.
func untar(t *testing.T, which, deb string) map[string]entry {
	t.Helper()
	out, err := exec.Command("dpkg-deb", which, deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s %s = %v", which, deb, err)
	}
	m := map[string]entry{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m
		}
		if err != nil {
			t.Fatalf("dpkg-deb %s %s: %v", which, deb, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("dpkg-deb %s %s: %s: %v", which, deb, h.Name, err)
		}
		m[h.Name] = entry{mode: h.Mode & 0o7777, data: data}
	}
}
