// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package guest

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testLog returns a logger that writes to the test's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
	rootTook time.Duration
)

// testRoot returns the guest tree, built once per test binary.
func testRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		start := time.Now()
		rootDir, rootErr = Root(context.Background(), RootOptions{Log: testLog(t)})
		rootTook = time.Since(start)
	})
	if rootErr != nil {
		t.Fatalf("Root() = %v", rootErr)
	}
	return rootDir
}

// TestRoot builds (or finds) the cached guest tree, checks that a second
// call finds it in the cache, and that its kernels are the host's.
func TestRoot(t *testing.T) {
	root := testRoot(t)
	t.Logf("Root() = %s in %v (first call of this test binary)", root, rootTook.Round(time.Millisecond))
	start := time.Now()
	again, err := Root(context.Background(), RootOptions{Log: testLog(t)})
	took := time.Since(start)
	if err != nil || again != root {
		t.Fatalf("Root() again = %q, %v; want %q", again, err, root)
	}
	t.Logf("Root() cached: %v", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("Root() cached took %v, want a cache hit in under 10s", took)
	}

	host, err := HostReleases("/boot")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Releases(root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != strings.Join(host, " ") {
		t.Errorf("Releases(%s) = %v, want the host's %v", root, got, host)
	}
	for _, rel := range host {
		vmlinuz, _, err := Kernel(root, rel)
		if err != nil {
			t.Errorf("Kernel(%s) = %v", rel, err)
			continue
		}
		a, errA := os.ReadFile(vmlinuz)
		b, errB := os.ReadFile(filepath.Join("/boot", "vmlinuz-"+rel))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("guest %s differs from the host's /boot/vmlinuz-%s (%v, %v)", vmlinuz, rel, errA, errB)
		}
	}
	if n, err := treeSize(root); err == nil {
		t.Logf("tree: %d MiB", n>>20)
	}
}

// TestRootInterrupted starts a build in an empty cache beside the remains of
// a killed one, stops it during debootstrap, and checks that the cache has
// no entry, no temporary tree, no mount, only the failed build's log.
func TestRootInterrupted(t *testing.T) {
	cache := t.TempDir()
	opts := RootOptions{CacheDir: cache, Log: testLog(t)}
	rec, err := opts.withDefaults().recipe()
	if err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(cache, "guest-"+rec.Key())
	stale := final + ".tmp-killed"
	if err := writeFiles(stale, []File{{Path: "/tree/etc/half", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dir, err := Root(ctx, opts)
	if err == nil {
		t.Fatalf("Root() with a 15s deadline = %s, want an error", dir)
	}
	t.Logf("Root() = %v", firstLine(err.Error()))
	left, _ := filepath.Glob(filepath.Join(cache, "*")) // only a malformed pattern fails
	for _, p := range left {
		switch p {
		case final + ".lock", final + ".failed.log":
		default:
			t.Errorf("left in the cache after an interrupted build: %s", p)
		}
	}
	if _, err := os.Stat(final + ".failed.log"); err != nil {
		t.Errorf("no log of the failed build: %v", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), cache) {
		t.Errorf("a mount under %s is left:\n%s", cache, mi)
	}
}

// testDeb builds a small package whose postinst records that it ran, with
// /proc, in the guest.
func testDeb(t *testing.T, dir string) string {
	t.Helper()
	pkg := filepath.Join(dir, "pkg")
	err := writeFiles(pkg, []File{
		{Path: "/DEBIAN/control", Data: []byte("Package: ukdump-guest-test\nVersion: 1.0\nArchitecture: all\n" +
			"Maintainer: ukdump <ukdump@example.org>\nDescription: guest.Disk test package\n")},
		{Path: "/DEBIAN/postinst", Mode: 0o755, Data: []byte("#!/bin/sh\nset -e\nmkdir -p /var/lib/ukdump-guest-test\n" +
			"test -r /proc/self/mountinfo && echo \"$1 /proc mounted\" >/var/lib/ukdump-guest-test/postinst\n")},
		{Path: "/usr/share/ukdump-guest-test/hello", Data: []byte("from the package\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, "ukdump-guest-test_1.0_all.deb")
	run(t, "dpkg-deb", "--root-owner-group", "--build", pkg, deb)
	return deb
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestDisk makes a disk with a file and a unit, and reads them back from the
// image without mounting it: the GPT with sfdisk, the file system with
// debugfs on the partition's offset.
func TestDisk(t *testing.T) {
	root := testRoot(t)
	dir := t.TempDir()
	const note = "/etc/ukdump-guest/note"
	deb := testDeb(t, dir)
	start := time.Now()
	path, uuid, err := Disk(context.Background(), root, DiskOptions{
		Path:  filepath.Join(dir, "disk.img"),
		Debs:  []string{deb},
		Files: []File{{Path: note, Data: []byte("hello\n"), Mode: 0o600}, ReadyUnit(true)},
		Units: []string{ReadyUnitName},
		Log:   testLog(t),
	})
	if err != nil {
		t.Fatalf("Disk() = %v", err)
	}
	t.Logf("Disk() = %s, UUID %s in %v", path, uuid, time.Since(start).Round(time.Millisecond))
	logSizes(t, path)

	out := run(t, "sfdisk", "--dump", path)
	for _, w := range []string{"label: gpt", "start=        2048", "type=" + linuxFS, `name="root"`} {
		if !strings.Contains(out, w) {
			t.Errorf("sfdisk --dump %s: no %q in\n%s", path, w, out)
		}
	}
	fs := fmt.Sprintf("%s?offset=%d", path, partStart)
	if got := run(t, "blkid", "-p", "-O", fmt.Sprint(partStart), "-s", "UUID", "-o", "value", path); strings.TrimSpace(got) != uuid {
		t.Errorf("blkid of the partition: UUID %q, want %q", got, uuid)
	}
	for _, c := range []struct{ file, want string }{
		{"/etc/fstab", "UUID=" + uuid + " / ext4 errors=remount-ro 0 1\n"},
		{note, "hello\n"},
		{"/usr/share/ukdump-guest-test/hello", "from the package\n"},
		{"/var/lib/ukdump-guest-test/postinst", "configure /proc mounted\n"},
		{"/var/lib/dpkg/status", "Package: ukdump-guest-test\nStatus: install ok installed\n"},
		{"/etc/systemd/system/" + ReadyUnitName, "ukdump-guest: ready"},
	} {
		if got := run(t, "debugfs", "-R", "cat "+c.file, fs); !strings.Contains(got, c.want) {
			t.Errorf("debugfs cat %s = %q, want %q in it", c.file, got, c.want)
		}
	}
	if got := run(t, "debugfs", "-R", "stat "+note, fs); !strings.Contains(got, "Mode:  0600") {
		t.Errorf("debugfs stat %s: mode is not 0600:\n%s", note, got)
	}
	wants := "/etc/systemd/system/multi-user.target.wants/" + ReadyUnitName
	if got := run(t, "debugfs", "-R", "stat "+wants, fs); !strings.Contains(got, "Type: symlink") || !strings.Contains(got, "/etc/systemd/system/"+ReadyUnitName) {
		t.Errorf("debugfs stat %s: not enabled (no symlink to the unit):\n%s", wants, got)
	}
	if out, err := exec.Command("e2fsck", "-f", "-n", fs).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -f -n %s = %v:\n%s", fs, err, out)
	}
}

// TestBoot boots a disk on the guest's own kernel and initrd, with virtio
// and with NVMe, and on every kernel of the guest, and waits for systemd to
// reach multi-user.target and the ready unit to say so before it powers off.
func TestBoot(t *testing.T) {
	root := testRoot(t)
	dir := t.TempDir()
	start := time.Now()
	disk, uuid, err := Disk(context.Background(), root, DiskOptions{
		Path:  filepath.Join(dir, "disk.img"),
		Files: []File{ReadyUnit(true)},
		Units: []string{ReadyUnitName},
		Log:   testLog(t),
	})
	if err != nil {
		t.Fatalf("Disk() = %v", err)
	}
	t.Logf("Disk() in %v", time.Since(start).Round(time.Millisecond))
	rels, err := Releases(root)
	if err != nil {
		t.Fatal(err)
	}
	rel61, err := LatestRelease(rels, "6.1.")
	if err != nil {
		t.Fatal(err)
	}
	type boot struct{ drive, release, dev string }
	boots := []boot{{Virtio, rel61, "/dev/vda1"}, {NVMe, rel61, "/dev/nvme0n1p1"}}
	if rel612, err := LatestRelease(rels, "6.12."); err == nil {
		boots = append(boots, boot{Virtio, rel612, "/dev/vda1"})
	}
	for _, b := range boots {
		t.Run(b.drive+"-"+b.release, func(t *testing.T) {
			kernel, initrd, err := Kernel(root, b.release)
			if err != nil {
				t.Fatal(err)
			}
			serial, err := os.Create(filepath.Join(dir, "serial-"+b.drive+"-"+b.release+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer serial.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			start := time.Now()
			vm, err := Start(ctx, BootOptions{Kernel: kernel, Initrd: initrd, Disk: disk, Drive: b.drive, RootUUID: uuid, Console: serial})
			if err != nil {
				t.Fatalf("Start() = %v", err)
			}
			defer func() {
				vm.Kill()
				vm.Wait() // how QEMU ended is in Expect's error, or reported below
				if t.Failed() {
					t.Logf("to reproduce: %s", vm.CommandLine())
					t.Logf("serial log: %s", serial.Name())
				}
			}()
			expect := func(s string) Line {
				t.Helper()
				l, err := vm.Expect(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			multi := expect("Reached target multi-user.target")
			uname := expect("ukdump-guest: uname -r: ")
			cmdline := expect("ukdump-guest: cmdline: ")
			rootDev := expect("ukdump-guest: root: ")
			failed := expect("ukdump-guest: failed units: ")
			ready := expect(ReadyLine)
			if err := vm.Wait(); err != nil {
				t.Errorf("QEMU: %v", err)
			}
			t.Logf("%s %s: multi-user.target at %.1fs, %q at %.1fs, powered off at %.1fs",
				b.drive, b.release, multi.At.Seconds(), ReadyLine, ready.At.Seconds(), time.Since(start).Seconds())
			if got := strings.TrimPrefix(uname.Text, "ukdump-guest: uname -r: "); got != b.release {
				t.Errorf("guest uname -r = %q, want %q", got, b.release)
			}
			if w := "root=UUID=" + uuid + " "; !strings.Contains(cmdline.Text, w) || !strings.Contains(cmdline.Text, "crashkernel=96M") {
				t.Errorf("guest %s: want %q and crashkernel=96M", cmdline.Text, w)
			}
			if w := b.dev + " " + uuid; !strings.HasSuffix(rootDev.Text, w) {
				t.Errorf("guest %s, want %q", rootDev.Text, w)
			}
			if !strings.HasSuffix(failed.Text, ": 0") {
				t.Errorf("guest %s", failed.Text)
				for _, l := range vm.Lines() {
					if strings.Contains(l.Text, "ukdump-guest: failed: ") {
						t.Errorf("guest %s", l.Text)
					}
				}
			}
			for _, l := range vm.Lines() {
				if strings.Contains(l.Text, "Kernel panic") || strings.Contains(l.Text, "FAILED") || strings.Contains(l.Text, "fsck not present") {
					t.Errorf("console at %.1fs: %s", l.At.Seconds(), l.Text)
				}
			}
		})
	}
}

// TestVmlinux fetches the vmlinux with debug info of every host kernel and
// checks that it has DWARF and is the build of that release.
func TestVmlinux(t *testing.T) {
	rels, err := HostReleases("/boot")
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		t.Run(rel, func(t *testing.T) {
			start := time.Now()
			path, err := Vmlinux(context.Background(), rel, VmlinuxOptions{Log: testLog(t)})
			if err != nil {
				t.Fatalf("Vmlinux(%s) = %v", rel, err)
			}
			t.Logf("Vmlinux(%s) = %s in %v", rel, path, time.Since(start).Round(time.Millisecond))
			logSizes(t, path)
			checkVmlinux(t, path, rel)
			start = time.Now()
			if again, err := Vmlinux(context.Background(), rel, VmlinuxOptions{}); err != nil || again != path {
				t.Errorf("Vmlinux(%s) again = %q, %v; want %q", rel, again, err, path)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("Vmlinux(%s) cached took %v", rel, took)
			}
		})
	}
}

// checkVmlinux checks that path is an ELF with DWARF whose linux_banner
// names release.
func checkVmlinux(t *testing.T, path, release string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".debug_info") == nil {
		t.Errorf("%s has no .debug_info", path)
	}
	ro := f.Section(".rodata")
	if ro == nil {
		t.Fatalf("%s has no .rodata", path)
	}
	data, err := ro.Data()
	if err != nil {
		t.Fatal(err)
	}
	if w := "Linux version " + release + " "; !bytes.Contains(data, []byte(w)) {
		t.Errorf("%s: no %q in .rodata", path, w)
	}
}

// TestCrashSession runs crash with the crashed kernel's debug symbols on the
// vmcore the e2e run saved ($UKDUMP_VMCORE, else out/e2e/dump/vmcore, else
// the first of out/e2e-*/dump/vmcore).
func TestCrashSession(t *testing.T) {
	if _, err := exec.LookPath("crash"); err != nil {
		t.Fatalf("crash %v: run scripts/deps.sh", ErrMissingTool)
	}
	vmcore := findVmcore()
	if vmcore == "" {
		t.Fatal("no vmcore: make e2e saves one in out/e2e/dump/vmcore, or set UKDUMP_VMCORE")
	}
	release := strings.TrimSpace(run(t, "crash", "--osrelease", vmcore))
	t.Logf("%s: kernel %s", vmcore, release)
	vmlinux, err := Vmlinux(context.Background(), release, VmlinuxOptions{Log: testLog(t)})
	if err != nil {
		t.Fatalf("Vmlinux(%s) = %v", release, err)
	}
	start := time.Now()
	cmd := exec.Command("crash", "-s", vmlinux, vmcore)
	cmd.Stdin = strings.NewReader("log\nbt\nps\nkmem -i\nquit\n")
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("crash -s %s %s = %v:\n%s", vmlinux, vmcore, err, out)
	}
	t.Logf("crash session: %v, %d lines", time.Since(start).Round(time.Millisecond), strings.Count(out, "\n"))
	if w, _, ok := strings.Cut(out, "\n"); ok && strings.HasPrefix(w, "WARNING") {
		t.Logf("crash warns: %s", w)
	}
	for _, w := range []string{
		"sysrq: Trigger a crash", // log
		"Kernel panic - not syncing: sysrq triggered crash",
		"] sysrq_handle_crash at ",       // bt: a frame, not the log's stack trace
		"   PID    PPID  CPU       TASK", // ps
		"[swapper/0]",
		"TOTAL MEM", // kmem -i
		"FREE",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("crash session: no %q", w)
		}
	}
	if !regexp.MustCompile(`(?m)^>?\s+1\s+0\s+\d+\s+[0-9a-f]{16}\s`).MatchString(out) {
		t.Errorf("crash session: ps lists no PID 1")
	}
	if t.Failed() {
		t.Logf("crash output:\n%s", out)
	} else {
		t.Logf("crash output (excerpt):\n%s", excerpt(out, "Kernel panic", "] sysrq_handle_crash at ", "   PID    PPID", "TOTAL MEM"))
	}
}

// findVmcore returns the vmcore of the e2e run, or "".
func findVmcore() string {
	if p := os.Getenv("UKDUMP_VMCORE"); p != "" {
		return p
	}
	cands := []string{filepath.Join("..", "..", "out", "e2e", "dump", "vmcore")}
	m, _ := filepath.Glob(filepath.Join("..", "..", "out", "e2e-*", "dump", "vmcore")) // only a malformed pattern fails
	sort.Strings(m)
	for _, p := range append(cands, m...) {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// excerpt returns, for each marker, the first line holding it and up to four
// lines after it.
func excerpt(s string, markers ...string) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for _, m := range markers {
		for i, l := range lines {
			if strings.Contains(l, m) {
				for _, x := range lines[i:min(i+5, len(lines))] {
					b.WriteString("  " + x + "\n")
				}
				b.WriteString("  …\n")
				break
			}
		}
	}
	return b.String()
}

// run runs a host command and returns its output, failing the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s = %v:\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// logSizes logs a file's apparent size and the disk space it takes.
func logSizes(t *testing.T, path string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d MiB (%d MiB allocated)", filepath.Base(path), st.Size>>20, st.Blocks*512>>20)
}
