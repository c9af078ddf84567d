// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package kexec loads, unloads and reports the crash (capture) kernel with kexec_file_load.
package kexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Flags of kexec_file_load from the kernel's uapi <linux/kexec.h>; copied so
// that this file builds on every OS (x/sys/unix has them on Linux only).
const (
	fileUnload  = 0x1 // KEXEC_FILE_UNLOAD
	fileOnCrash = 0x2 // KEXEC_FILE_ON_CRASH
)

// ErrNoReservation is returned by Load when the running kernel has no memory
// reserved for a crash kernel (kexec_crash_size is 0).
var ErrNoReservation = errors.New("no memory is reserved for a crash kernel")

// ErrReservationTooSmall is returned by Load when the crash kernel reservation
// is smaller than RequiredBytes and LoadOpts.Force is not set.
var ErrReservationTooSmall = errors.New("crash kernel reservation is too small")

// Loader loads the capture kernel. The zero value uses the running system.
type Loader struct {
	// ProcRoot is where procfs is mounted. Default "/proc".
	ProcRoot string
	// SysRoot is where sysfs is mounted. Default "/sys".
	SysRoot string
	// FileLoad is the kexec_file_load system call. Default unix.KexecFileLoad
	// (ENOSYS where the architecture or OS has none); tests replace it.
	FileLoad func(kernelFd, initrdFd int, cmdline string, flags int) error
	// Logf reports progress. Default: discard.
	Logf func(format string, args ...any)
}

// LoadOpts says what Load loads. The zero value is not enough: Initrd is required.
type LoadOpts struct {
	// Kernel is the capture kernel, an x86-64 bzImage. Default
	// /boot/vmlinuz-<release of the running kernel>.
	Kernel string
	// Initrd is the capture initramfs. Required.
	Initrd string
	// Append is added to the end of the command line (after the derived
	// words, or after Cmdline if that is set), so its words win.
	Append string
	// Cmdline, if set, replaces the command line derived from /proc/cmdline
	// by CaptureCmdline; it is used as is, followed by Append.
	Cmdline string
	// Force loads even if the reservation looks too small (see RequiredBytes)
	// or the kernel's size cannot be read. It does not help with no reservation.
	Force bool
	// CPUs is how many CPUs the capture kernel brings up (nr_cpus=, the
	// image's collect.cpus); 0 means 1. Each one past the first adds
	// PerCaptureCPU to the reservation needed.
	CPUs int
	// Extra is memory the image's capture needs beyond RuntimeMargin (its
	// record's runtime_bytes: an S3 upload's part buffers), added to the
	// reservation needed.
	Extra int64
}

func (l *Loader) procRoot() string {
	if l.ProcRoot == "" {
		return "/proc"
	}
	return l.ProcRoot
}

func (l *Loader) sysRoot() string {
	if l.SysRoot == "" {
		return "/sys"
	}
	return l.SysRoot
}

func (l *Loader) logf(format string, args ...any) {
	if l.Logf != nil {
		l.Logf(format, args...)
	}
}

func (l *Loader) fileLoad(kernelFd, initrdFd int, cmdline string, flags int) error {
	if l.FileLoad != nil {
		return l.FileLoad(kernelFd, initrdFd, cmdline, flags)
	}
	return kexecFileLoad(kernelFd, initrdFd, cmdline, flags)
}

// RunningRelease is the running kernel's release (uname -r), from procfs.
func (l *Loader) RunningRelease() (string, error) {
	rel, err := readTrim(filepath.Join(l.procRoot(), "sys/kernel/osrelease"))
	if err != nil {
		return "", fmt.Errorf("finding the running kernel's release: %w", err)
	}
	return rel, nil
}

// DefaultKernel is the capture kernel Load uses without LoadOpts.Kernel: the
// running kernel's, /boot/vmlinuz-<release>.
func (l *Loader) DefaultKernel() (string, error) {
	rel, err := l.RunningRelease()
	if err != nil {
		return "", fmt.Errorf("%w (for the default --kernel)", err)
	}
	return "/boot/vmlinuz-" + rel, nil
}

// Load loads o.Kernel and o.Initrd as the crash kernel. It:
//   - opens the kernel and the initrd,
//   - reads the kernel's init_size and estimates the initrd's unpacked size,
//   - builds the command line (CaptureCmdline of /proc/cmdline, or o.Cmdline) and checks its length,
//   - reads what the machine adds to the need (Machine, MachineBytes),
//   - compares RequiredBytes with SysRoot/kernel/kexec_crash_size and refuses
//     no reservation, and a too small one unless o.Force,
//   - calls kexec_file_load with KEXEC_FILE_ON_CRASH; its errors are explained by ExplainLoadError.
//
// A crash kernel that is already loaded is replaced.
func (l *Loader) Load(o LoadOpts) error {
	if o.Initrd == "" {
		return errors.New("no initrd given: build one with 'ukdump build' and pass it with --initrd")
	}
	if o.Kernel == "" {
		k, err := l.DefaultKernel()
		if err != nil {
			return err
		}
		o.Kernel = k
	}
	kernel, err := os.Open(o.Kernel)
	if err != nil {
		return err
	}
	defer kernel.Close()
	initrd, err := os.Open(o.Initrd)
	if err != nil {
		return err
	}
	defer initrd.Close()

	initSize, err := KernelInitSize(kernel)
	if err != nil {
		if !o.Force {
			return fmt.Errorf("%s: %w", o.Kernel, err)
		}
		l.logf("warning: %s: %v; loading anyway (--force)", o.Kernel, err)
	}
	fi, err := initrd.Stat()
	if err != nil {
		return err
	}
	unpacked, format, err := estimateUnpacked(initrd, fi.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", o.Initrd, err)
	}
	m, err := l.Machine()
	if err != nil {
		if !o.Force {
			return fmt.Errorf("reading this machine's size for the size check: %w", err)
		}
		l.logf("warning: reading this machine's size for the size check: %v; loading anyway (--force)", err)
	}
	o.CPUs = max(o.CPUs, 1)
	need := RequiredBytes(int64(initSize), fi.Size(), unpacked) + MachineBytes(m) + CaptureCPUBytes(o.CPUs) + o.Extra

	cmdline := strings.TrimSpace(o.Cmdline + " " + o.Append)
	if o.Cmdline == "" {
		proc, err := os.ReadFile(filepath.Join(l.procRoot(), "cmdline"))
		if err != nil {
			return err
		}
		var boot string
		if o.CPUs > 1 {
			if boot, err = l.BootAPICID(); err != nil {
				l.logf("warning: %v: the capture kernel's %d CPUs may include the boot CPU (no disable_cpu_apicid=)", err, o.CPUs)
			}
		}
		if cmdline, err = CaptureCmdline(string(proc), o.Append, o.CPUs, boot); err != nil {
			return err
		}
	} else if err := checkCmdlineLen(cmdline); err != nil {
		return err
	}

	sizePath := filepath.Join(l.sysRoot(), "kernel/kexec_crash_size")
	reserved, err := readInt(sizePath)
	switch {
	case err != nil && !o.Force:
		return fmt.Errorf("reading the crash kernel reservation: %w", err)
	case err != nil:
		l.logf("warning: reading the crash kernel reservation: %v; loading anyway (--force)", err)
	case reserved == 0:
		return fmt.Errorf("%w (%s is 0): add crashkernel=%dM to the kernel command line and reboot",
			ErrNoReservation, sizePath, CrashkernelMiB(need))
	case need > reserved && !o.Force:
		return fmt.Errorf("%w: %.1f MiB reserved (%s), about %.1f MiB needed (%s): "+
			"set crashkernel=%dM on the kernel command line and reboot, or use --force",
			ErrReservationTooSmall, mib(reserved), sizePath, mib(need),
			needBreakdown(int64(initSize), fi.Size(), unpacked, o.Extra, o.CPUs, m), CrashkernelMiB(need))
	case need > reserved:
		l.logf("warning: %.1f MiB reserved, about %.1f MiB needed; loading anyway (--force)", mib(reserved), mib(need))
	}

	l.logf("loading crash kernel %s, initrd %s (%s, %.1f MiB, ~%.1f MiB unpacked), %.1f of %.1f MiB reserved needed, cmdline %q",
		o.Kernel, o.Initrd, format, mib(fi.Size()), mib(unpacked), mib(need), mib(reserved), cmdline)
	if err := l.fileLoad(int(kernel.Fd()), int(initrd.Fd()), cmdline, fileOnCrash); err != nil {
		return ExplainLoadError(err, l.attempt(LoadAttempt{
			Kernel: o.Kernel, Initrd: o.Initrd, Cmdline: cmdline, Flags: fileOnCrash,
			Reserved: reserved, Required: need,
		}))
	}
	return nil
}

// Required is RequiredBytes for the kernel and the image at these paths plus
// MachineBytes of m (Loader.Machine): the crashkernel= reservation that
// loading them on that machine needs.
func Required(kernelPath, initrdPath string, m Machine) (int64, error) {
	kernel, err := os.Open(kernelPath)
	if err != nil {
		return 0, err
	}
	defer kernel.Close()
	initSize, err := KernelInitSize(kernel)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", kernelPath, err)
	}
	initrd, err := os.Open(initrdPath)
	if err != nil {
		return 0, err
	}
	defer initrd.Close()
	fi, err := initrd.Stat()
	if err != nil {
		return 0, err
	}
	unpacked, _, err := estimateUnpacked(initrd, fi.Size())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", initrdPath, err)
	}
	return RequiredBytes(int64(initSize), fi.Size(), unpacked) + MachineBytes(m), nil
}

// attempt fills in the system state ExplainLoadError uses to explain EPERM.
// The files are optional: a missing one leaves its field empty.
func (l *Loader) attempt(a LoadAttempt) LoadAttempt {
	a.KexecLoadDisabled, _ = readTrim(filepath.Join(l.procRoot(), "sys/kernel/kexec_load_disabled"))
	a.LoadLimitPanic, _ = readTrim(filepath.Join(l.procRoot(), "sys/kernel/kexec_load_limit_panic"))
	a.Lockdown, _ = readTrim(filepath.Join(l.sysRoot(), "kernel/security/lockdown"))
	a.Euid = os.Geteuid()
	return a
}

// Unload unloads the crash kernel with
// kexec_file_load(-1, -1, "", KEXEC_FILE_UNLOAD|KEXEC_FILE_ON_CRASH).
// Unloading when none is loaded succeeds.
func (l *Loader) Unload() error {
	const flags = fileUnload | fileOnCrash
	if err := l.fileLoad(-1, -1, "", flags); err != nil {
		a := l.attempt(LoadAttempt{Flags: flags})
		return fmt.Errorf("SYS_kexec_file_load(-1, -1, \"\", %#x) = %w%s", flags, err, explanation(err, a))
	}
	return nil
}

// Status is the state of the crash kernel.
type Status struct {
	// Loaded is true if a crash kernel is loaded (kexec_crash_loaded is 1).
	Loaded bool
	// ReservedBytes is the size of the crash kernel reservation (kexec_crash_size).
	ReservedBytes int64
}

// Status reads SysRoot/kernel/kexec_crash_loaded and SysRoot/kernel/kexec_crash_size.
func (l *Loader) Status() (Status, error) {
	loaded, err := readTrim(filepath.Join(l.sysRoot(), "kernel/kexec_crash_loaded"))
	if err != nil {
		return Status{}, err
	}
	size, err := readInt(filepath.Join(l.sysRoot(), "kernel/kexec_crash_size"))
	if err != nil {
		return Status{}, err
	}
	return Status{Loaded: loaded == "1", ReservedBytes: size}, nil
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func readInt(path string) (int64, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &os.PathError{Op: "parse", Path: path, Err: err}
	}
	return n, nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
