// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ukdump/ukdump/initramfs"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/manifest"
)

// ukdump load with no flags loads the running kernel's image, building it
// first when it is missing or stale, and only then.
func TestLoadDefaultImage(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "0")
	const config = "[[target]]\npath = \"/var/crash\"\n" // on /dev/vda1 (fakeDisk), found in the fake system's sysfs
	e := newBuildEnv(t, config)
	rel := strings.TrimPrefix(filepath.Base(s.kernel), "vmlinuz-")
	imgDir := t.TempDir()
	load := func(args ...string) (string, string, error) {
		c := s.context(append([]string{"load"}, args...)...)
		c.ConfigPath, c.ImageDir, c.Busybox = e.config, imgDir, e.busybox
		c.Resolve = func(p string) (hostfs.FS, error) {
			return hostfs.FS{Path: p, FSPath: p, Device: "/dev/vda1", FSType: "ext4", MountPoint: "/", Spec: "UUID=0a1b"}, nil
		}
		return run(t, c)
	}
	img := filepath.Join(imgDir, "ukdump-"+rel+".img")

	stdout, stderr, err := load()
	if err != nil {
		t.Fatalf("load = %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "rebuilding "+img+": there is none for kernel "+rel) || !strings.Contains(stdout, "ukdump build: wrote "+img) {
		t.Errorf("the first load did not build the missing image:\n%s", stdout)
	}
	if len(s.calls) != 1 || s.calls[0].Initrd != img {
		t.Fatalf("kexec calls = %+v, want one of %s", s.calls, img)
	}
	if rec, err := initramfs.ReadRecord(img); err != nil || rec.KernelRelease != rel {
		t.Errorf("the image's record = %+v, %v", rec, err)
	}

	stdout, _, err = load()
	if err != nil || strings.Contains(stdout, "rebuilding") {
		t.Errorf("a second load = %v, rebuilt a current image:\n%s", err, stdout)
	}
	os.WriteFile(e.config, []byte("# changed\n"+config), 0o644)
	stdout, _, err = load()
	if err != nil || !strings.Contains(stdout, "rebuilding "+img+": config changed") {
		t.Errorf("a load after the config changed = %v:\n%s", err, stdout)
	}
	stdout, _, err = load("--no-rebuild")
	if err != nil || strings.Contains(stdout, "rebuilding") {
		t.Errorf("load --no-rebuild = %v:\n%s", err, stdout)
	}
	// The disk is not there at boot: a current image is loaded all the
	// same (telling that needs no driver detection); a rebuild fails.
	if err := os.Remove(filepath.Join(s.dir, "sys/class/block/vda1")); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err = load(); err != nil || strings.Contains(stdout, "rebuilding") {
		t.Errorf("a load of a current image without its disk = %v:\n%s", err, stdout)
	}
	os.WriteFile(e.config, []byte("# changed again\n"+config), 0o644)
	if _, _, err = load(); err == nil || !strings.Contains(err.Error(), "target[0] UUID=0a1b: block device vda1") {
		t.Errorf("a rebuild without the disk = %v, want an error naming the target and vda1", err)
	}
}

// An image of another kernel release is refused, with the command that
// fixes it; --force loads it anyway.
func TestLoadRefusesOtherRelease(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "0")
	rel := strings.TrimPrefix(filepath.Base(s.kernel), "vmlinuz-")
	rec, _ := initramfs.Record{KernelRelease: "5.10.0-99-amd64"}.Marshal()
	os.WriteFile(s.initrd+layout.RecordSuffix, rec, 0o644)
	_, _, err := run(t, s.context("load", "--kernel", s.kernel, "--initrd", s.initrd))
	for _, want := range []string{"holds the modules of kernel 5.10.0-99-amd64", "is " + rel, "ukdump load --kernel " + s.kernel + " (it builds ", "ukdump-" + rel + ".img), or ukdump build --kver " + rel, "--force"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load of another release's image = %v, want %q in it", err, want)
		}
	}
	if len(s.calls) != 0 {
		t.Errorf("kexec_file_load called for a refused image")
	}
	_, stderr, err := run(t, s.context("load", "--kernel", s.kernel, "--initrd", s.initrd, "--force"))
	if err != nil || len(s.calls) != 1 || !strings.Contains(stderr, "loading anyway (--force)") {
		t.Errorf("load --force = %v (%d calls), stderr %q", err, len(s.calls), stderr)
	}
}

// ukdump status reports the newest dump on the local targets, saved or not.
func TestStatusLastCapture(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "1")
	dir := t.TempDir()
	write := func(name string, m manifest.Manifest) {
		os.MkdirAll(filepath.Join(dir, name), 0o700)
		b, _ := json.Marshal(m)
		os.WriteFile(filepath.Join(dir, name, manifest.Name), append(b, "   \n"...), 0o600) // padded, as the capture leaves it
	}
	crash := time.Date(2026, 12, 1, 22, 10, 5, 0, time.UTC)
	write("web1-20261130T080000Z", manifest.Manifest{Complete: true, File: "vmcore"})
	write("web1-20261201T221005Z", manifest.Manifest{Complete: true, File: "vmcore", Size: 31 << 20, Format: "kdump", Compression: "zstd",
		KernelRelease: "6.1.0-57-amd64", CrashTime: crash, Test: true, SHA256: "0123456789abcdef"})
	os.MkdirAll(filepath.Join(dir, "lost+found"), 0o700)
	c := s.context("status")
	c.ConfigPath = statusConfig(t, dir)
	stdout, _, err := run(t, c)
	want := "last capture: the machine crashed at 2026-12-01T22:10:05Z (kernel 6.1.0-57-amd64, a test crash (ukdump test)): saved " +
		filepath.Join(dir, "web1-20261201T221005Z/vmcore") + " (31.0 MiB, kdump zstd, sha256 0123456789ab…)\n"
	if err != nil || !strings.Contains(stdout, want) || !strings.Contains(stdout, "dumps kept: 2") {
		t.Errorf("status = %v:\n%s\nwant the line\n%s", err, stdout, want)
	}
	write("web1-20261201T230000Z", manifest.Manifest{File: "vmcore.incomplete", Size: 10 << 20, Error: "write: no space left on device",
		KernelRelease: "6.1.0-57-amd64", CrashTime: crash.Add(time.Hour)})
	stdout, _, _ = run(t, c)
	if !strings.Contains(stdout, "FAILED: write: no space left on device; kept "+filepath.Join(dir, "web1-20261201T230000Z/vmcore.incomplete")) {
		t.Errorf("status after a failed capture:\n%s", stdout)
	}
}

// ukdump status computes the sha256 the capture left to the next boot, of
// every dump that lacks it, and records it in the manifests.
func TestStatusFillsSHA256(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "1")
	dir := t.TempDir()
	crash := time.Date(2026, 12, 1, 22, 10, 5, 0, time.UTC)
	dumps := map[string][]byte{"web1-20261130T080000Z": []byte("an older dump"), "web1-20261201T221005Z": []byte("the newest dump")}
	for name, data := range dumps {
		os.MkdirAll(filepath.Join(dir, name), 0o700)
		os.WriteFile(filepath.Join(dir, name, "vmcore"), data, 0o600)
		b, _ := manifest.Marshal(manifest.Manifest{Complete: true, File: "vmcore", Size: int64(len(data)), Format: "kdump", Compression: "snappy",
			KernelRelease: "6.1.0-57-amd64", CrashTime: crash, SHA256Pending: true})
		os.WriteFile(filepath.Join(dir, name, manifest.Name), b, 0o600)
	}
	// A dump changed since its capture is not hashed, and status says why.
	os.MkdirAll(filepath.Join(dir, "web1-20261101T000000Z"), 0o700)
	os.WriteFile(filepath.Join(dir, "web1-20261101T000000Z", "vmcore"), []byte("short"), 0o600)
	b, _ := manifest.Marshal(manifest.Manifest{Complete: true, File: "vmcore", Size: 99, SHA256Pending: true})
	os.WriteFile(filepath.Join(dir, "web1-20261101T000000Z", manifest.Name), b, 0o600)

	c := s.context("status")
	c.ConfigPath = statusConfig(t, dir)
	stdout, _, err := run(t, c)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for name, data := range dumps {
		sum := sha256.Sum256(data)
		hexsum := hex.EncodeToString(sum[:])
		if want := "sha256 of " + filepath.Join(dir, name, "vmcore") + ": " + hexsum; !strings.Contains(stdout, want) {
			t.Errorf("status:\n%s\nwant the line %q", stdout, want)
		}
		m, err := manifest.Read(filepath.Join(dir, name, manifest.Name))
		if err != nil || m.SHA256 != hexsum || m.SHA256Pending {
			t.Errorf("%s/manifest.json after status: sha256 %q pending %v (%v), want %s", name, m.SHA256, m.SHA256Pending, err, hexsum)
		}
	}
	for _, want := range []string{"kdump snappy, sha256 " + func() string { s := sha256.Sum256(dumps["web1-20261201T221005Z"]); return hex.EncodeToString(s[:6]) }() + "…)",
		"note: sha256 of " + filepath.Join(dir, "web1-20261101T000000Z", "vmcore") + ": it has 5 bytes, manifest.json says 99: changed after the capture, not hashed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status:\n%s\nwant %q in it", stdout, want)
		}
	}
	// Done once: the next status has nothing to hash.
	if stdout, _, _ := run(t, c); strings.Contains(stdout, "left by the capture") {
		t.Errorf("second status hashed again:\n%s", stdout)
	}
}

// ukdump test prints its checks and crashes only when they pass and it is told to.
func TestTestCommand(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "1")
	e := newBuildEnv(t, validConfig)
	imgDir := t.TempDir()
	crashed := 0
	ctx := func(args ...string) Context {
		c := s.context(append([]string{"test"}, args...)...)
		c.ConfigPath, c.ImageDir, c.Busybox = statusConfig(t, t.TempDir()), imgDir, e.busybox
		c.Crash = func() error { crashed++; return nil }
		c.Resolve = func(p string) (hostfs.FS, error) {
			return hostfs.FS{Path: p, FSPath: p, Device: "/dev/vda1", FSType: "ext4", MountPoint: "/", Spec: "UUID=0a1b"}, nil
		}
		return c
	}
	// No image yet: a check fails, no crash.
	stdout, _, err := run(t, ctx("--yes"))
	if err == nil || !strings.Contains(stdout, "FAIL image") || crashed != 0 {
		t.Errorf("test without an image = %v, crashed %d:\n%s", err, crashed, stdout)
	}
	// Build and load the image of test's config.
	c := ctx()
	l := s.context("load")
	l.ConfigPath, l.ImageDir, l.Busybox, l.Resolve = c.ConfigPath, imgDir, e.busybox, c.Resolve
	if _, _, err := run(t, l); err != nil {
		t.Fatal(err)
	}
	c = ctx()
	c.ConfigPath = l.ConfigPath
	stdout, _, err = run(t, c)
	if err != nil || strings.Contains(stdout, "FAIL") || crashed != 0 || !strings.Contains(stdout, "not crashing") {
		t.Errorf("test without --yes = %v, crashed %d:\n%s", err, crashed, stdout)
	}
	c = ctx("--yes")
	c.ConfigPath = l.ConfigPath
	stdout, _, err = run(t, c)
	last := s.calls[len(s.calls)-1]
	if err != nil || crashed != 1 || !strings.Contains(last.Cmdline, "ukdump.test=1") {
		t.Errorf("test --yes = %v, crashed %d, last load's cmdline %q:\n%s", err, crashed, last.Cmdline, stdout)
	}
}
