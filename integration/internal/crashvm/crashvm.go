// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package crashvm runs ukdump's end-to-end scenario: a real kernel crashes in
// QEMU, ukdump's capture kernel saves the dump, and the host checks what was
// saved with tools that are not ukdump's.
//
// A run has two stages, both initramfs-only. Stage 1 (integration/stage1, "the
// production system") boots the crashing kernel with crashkernel=, runs the
// real `ukdump load` with the image `ukdump build` made from the scenario's
// config, and crashes the kernel with sysrq. Stage 2 is that image in the
// capture kernel: it saves the dump to a second virtio disk (ext4 labelled
// crashdump, made on the host) or over SFTP to the test's own sshd, then
// reboots; QEMU runs with -no-reboot, so that ends it. The host reads the disk
// with debugfs (no mount) and runs the scenario's checks.
//
// The harness is hugelgupf/vmtest's qemu package, the one u-root's VM tests
// use: it starts QEMU with our kernel, initramfs and devices under a context
// timeout, relays the serial console and runs host tasks alongside the guest.
// Its initramfs builder (quimage) and its guest side (guest, qevent) are not
// used: the image under test is the one `ukdump build` makes, as for a user,
// and the guest runs the product, not a Go test. What vmtest lacks is added
// here: a network namespace per run, the console with host timestamps, the
// test's sshd, the disk.
//
// The harness follows what DESIGN.md measured: TCG only; a run is judged by the
// console's fixed result line and by what was saved, never by QEMU's exit
// status (0 for a reboot and for a kernel panic alike); QEMU runs in a network
// namespace of its own, where user networking reaches only that namespace's
// loopback (the guest's 10.0.2.2 is its 127.0.0.1, where the sshd listens).
package crashvm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// A Scenario is one end-to-end run: what the capture image is built from, the
// machine that crashes, and what goes wrong on purpose.
type Scenario struct {
	Config Config
	Guest  Guest
	Fault  Fault
}

// Config is the capture image's ukdump.toml.
type Config struct {
	// Format is the dump format: elf or kdump.
	Format string
	// Compression is the kdump codec; empty: ukdump's default.
	Compression string
	// CPUs is collect.cpus, the capture kernel's nr_cpus=; 0: ukdump's default.
	CPUs int
	// Exclude lists the page classes left out; nil: ukdump's default (-d 31).
	Exclude []string
	// Targets are tried in order.
	Targets []Target
	// Failure is the failure action; empty: reboot.
	Failure string
	// MinFree is retention.min_free; empty: ukdump's default.
	MinFree string
}

// A Target is one [[target]] of the config: a disk, or an SFTP server on the
// host (the guest's 10.0.2.2).
type Target struct {
	// Label names a disk target's filesystem (device = "LABEL=…").
	Label string
	// Path is the directory on a disk target.
	Path string
	// WaitDevice is how long the capture waits for the disk to appear.
	WaitDevice string
	// SFTPPort, if not 0, makes this an SFTP target at 10.0.2.2:SFTPPort.
	// Only SSHPort has a server behind it.
	SFTPPort int
	// S3Port, if not 0, makes this an S3 target at http://10.0.2.2:S3Port,
	// s3://S3Bucket/S3Prefix. Only S3Port has a server behind it.
	S3Port int
}

// SSHPort is where the test's sshd listens, in the run's network namespace.
const SSHPort = 2222

// The targets the scenarios use.
var (
	// Disk is /var/crash on the crashdump disk every run attaches.
	Disk = Target{Label: "crashdump", Path: "/var/crash", WaitDevice: "60s"}
	// NoDisk is a disk that is not there: the capture gives up after 2s.
	NoDisk = Target{Label: "nothere", WaitDevice: "2s"}
	// SFTP is the test's sshd.
	SFTP = Target{SFTPPort: SSHPort}
	// DeadSFTP is an SFTP port where nothing listens.
	DeadSFTP = Target{SFTPPort: SSHPort + 1}
	// S3 is the test's versitygw.
	S3 = Target{S3Port: S3Port}
	// DeadS3 is an S3 endpoint where nothing listens.
	DeadS3 = Target{S3Port: S3Port + 1}
)

// Guest is the machine that crashes and the kernel that captures its crash.
type Guest struct {
	// Kernel is the crashing kernel's series, "6.1" or "6.12": the newest
	// installed /boot/vmlinuz-SERIES.*-amd64. Empty: 6.1.
	Kernel string
	// CaptureKernel is the capture kernel's series, whose modules go into the
	// image; empty: Kernel.
	CaptureKernel string
	// Memory is the guest's RAM (QEMU -m); empty: 1G.
	Memory string
	// CPUs is the guest's CPUs (QEMU -smp); 0: 1.
	CPUs int
	// Crashkernel is stage 1's crashkernel=; empty: 96M.
	Crashkernel string
	// Fill is how many MiB of mixed content stage 1 writes to memory before
	// the crash (ukdump.e2e.fill=), so the dump looks like a working machine's.
	Fill int
	// Force loads below ukdump load's own size check (ukdump.e2e.force=1), to
	// find the crashkernel= floor.
	Force bool
	// CrashOnCPU0 crashes the kernel on CPU 0, the boot CPU
	// (ukdump.e2e.crash_cpu0=1). The capture kernel starts on the CPU that
	// crashed and leaves the boot CPU out only when it is another: so a
	// guest of N CPUs gives the capture N, not N-1.
	CrashOnCPU0 bool
}

// Fault is what goes wrong on purpose.
type Fault struct {
	// KillAfter, if not 0, kills the capture abruptly, as an OOM kill would,
	// once the dump file holds this many bytes, synced (ukdump.e2e.kill_after=
	// on stage 1's command line; ukdump load passes ukdump.* words on to the
	// capture kernel). The disk is left with its journal not replayed: the
	// harness replays it (e2fsck -E journal_only), as the next mount would,
	// before it reads the disk.
	KillAfter int64
	// DiskSize is the crashdump disk's size; empty: 4G.
	DiskSize string
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (g Guest) kernel() string        { return or(g.Kernel, "6.1") }
func (g Guest) captureKernel() string { return or(g.CaptureKernel, g.kernel()) }
func (g Guest) memory() string        { return or(g.Memory, "1G") }
func (g Guest) crashkernel() string   { return or(g.Crashkernel, "96M") }
func (f Fault) diskSize() string      { return or(f.DiskSize, "4G") }

// sftp reports whether the config has an SFTP target: the guest gets a
// network card, and the run its sshd.
func (c Config) sftp() bool {
	return slices.ContainsFunc(c.Targets, func(t Target) bool { return t.SFTPPort != 0 })
}

// cmdline is stage 1's kernel command line.
func (s Scenario) cmdline() []string {
	cl := []string{"console=ttyS0", "crashkernel=" + s.Guest.crashkernel(), "panic=-1", "loglevel=6"}
	if s.Guest.Fill > 0 {
		cl = append(cl, fmt.Sprintf("ukdump.e2e.fill=%d", s.Guest.Fill))
	}
	if s.Guest.Force {
		cl = append(cl, "ukdump.e2e.force=1")
	}
	if s.Guest.CrashOnCPU0 {
		cl = append(cl, "ukdump.e2e.crash_cpu0=1")
	}
	if s.Fault.KillAfter > 0 {
		cl = append(cl, fmt.Sprintf("ukdump.e2e.kill_after=%d", s.Fault.KillAfter))
	}
	return cl
}

// TOML renders the config as the file `ukdump build -c` reads. sshDir is
// where the test's sshd keeps its keys and the directory dumps go to; the
// S3 credentials are beside it, in ../s3.
func (c Config) TOML(sshDir string) string {
	var b strings.Builder
	b.WriteString("[collect]\n")
	fmt.Fprintf(&b, "format = %q\n", c.Format)
	if c.CPUs != 0 {
		fmt.Fprintf(&b, "cpus = %d\n", c.CPUs)
	}
	if c.Compression != "" {
		fmt.Fprintf(&b, "compression = %q\n", c.Compression)
	}
	if c.Exclude != nil {
		q := make([]string, len(c.Exclude))
		for i, e := range c.Exclude {
			q[i] = strconv.Quote(e)
		}
		fmt.Fprintf(&b, "exclude = [%s]\n", strings.Join(q, ", "))
	}
	for _, t := range c.Targets {
		b.WriteString("\n[[target]]\n")
		if t.S3Port != 0 {
			fmt.Fprintf(&b, "url = %q\n", "s3://"+S3Bucket+"/"+S3Prefix)
			fmt.Fprintf(&b, "endpoint = %q\n", fmt.Sprintf("http://10.0.2.2:%d", t.S3Port))
			fmt.Fprintf(&b, "access_key_file = %q\n", filepath.Join(s3Dir(sshDir), "access"))
			fmt.Fprintf(&b, "secret_key_file = %q\n", filepath.Join(s3Dir(sshDir), "secret"))
			continue
		}
		if t.SFTPPort != 0 {
			fmt.Fprintf(&b, "url = %q\n", fmt.Sprintf("sftp://root@10.0.2.2:%d%s", t.SFTPPort, filepath.Join(sshDir, "crash")))
			fmt.Fprintf(&b, "identity = %q\n", filepath.Join(sshDir, "id_ed25519"))
			fmt.Fprintf(&b, "known_hosts = %q\n", filepath.Join(sshDir, "known_hosts"))
			continue
		}
		fmt.Fprintf(&b, "device = %q\n", "LABEL="+t.Label)
		if t.Path != "" {
			fmt.Fprintf(&b, "path = %q\n", t.Path)
		}
		if t.WaitDevice != "" {
			fmt.Fprintf(&b, "wait_device = %q\n", t.WaitDevice)
		}
	}
	b.WriteString("\n[action]\nfinal = \"reboot\"\n")
	fmt.Fprintf(&b, "failure = %q\n", or(c.Failure, "reboot"))
	b.WriteString("deadline = \"10m\"\n")
	if c.MinFree != "" {
		fmt.Fprintf(&b, "\n[retention]\nmin_free = %q\n", c.MinFree)
	}
	return b.String()
}

// ErrNoKernel is returned when no kernel of a series is installed.
var ErrNoKernel = errors.New("run scripts/deps.sh (installs Debian's 6.1 and 6.12 kernels)")

// FindKernel returns the newest installed kernel of a series ("6.1", "6.12")
// in boot (/boot): vmlinuz-SERIES.*-amd64, not a -cloud- or -rt- one, and its
// release. No test names a point release: they move (DESIGN.md).
func FindKernel(boot, series string) (path, release string, err error) {
	m, err := filepath.Glob(filepath.Join(boot, "vmlinuz-"+series+".*-amd64"))
	if err != nil {
		return "", "", err
	}
	m = slices.DeleteFunc(m, func(p string) bool {
		return strings.Contains(p, "-cloud-") || strings.Contains(p, "-rt-")
	})
	if len(m) == 0 {
		return "", "", fmt.Errorf("no %s/vmlinuz-%s.*-amd64: %w", boot, series, ErrNoKernel)
	}
	slices.SortFunc(m, compareVersions)
	path = m[len(m)-1]
	return path, strings.TrimPrefix(filepath.Base(path), "vmlinuz-"), nil
}

// compareVersions orders strings as sort -V does for kernel releases: runs of
// digits compare as numbers, everything else byte by byte.
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := leadingRun(a)
		nb, rb := leadingRun(b)
		if isDigit(na) && isDigit(nb) {
			x, _ := strconv.ParseUint(na, 10, 64)
			y, _ := strconv.ParseUint(nb, 10, 64)
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		} else if c := strings.Compare(na, nb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return strings.Compare(a, b)
}

// leadingRun splits s after its first run of digits or of non-digits.
func leadingRun(s string) (run, rest string) {
	d := isDigit(s[:1])
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsDigit(r) != d })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func isDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// ParseSize reads a size as QEMU and truncate(1) write it: bytes, or a number
// with K, M or G (binary units).
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want N, NK, NM or NG", s)
	}
	return n * mult, nil
}

// FindRoot returns the repository's top directory, the first of dir and its
// parents with ukdump's go.mod.
func FindRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.HasPrefix(string(b), "module github.com/ukdump/ukdump\n") {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no ukdump go.mod in %s or above", dir)
		}
	}
}
