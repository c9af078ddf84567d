// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// LoadAttempt describes a failed kexec_file_load call and the system state
// ExplainLoadError needs to say why it failed. Loader.Load fills it in.
type LoadAttempt struct {
	Kernel, Initrd, Cmdline string
	Flags                   int
	// Reserved and Required are the crash reservation and RequiredBytes, in
	// bytes; Required is 0 if unknown.
	Reserved, Required int64
	// KexecLoadDisabled and LoadLimitPanic are the contents of
	// /proc/sys/kernel/kexec_load_disabled and kexec_load_limit_panic
	// (Linux 6.6+); Lockdown is /sys/kernel/security/lockdown, e.g.
	// "none [integrity] confidentiality". Each is "" if unknown.
	KexecLoadDisabled, LoadLimitPanic, Lockdown string
	// Euid is the caller's effective user id.
	Euid int
}

// ExplainLoadError wraps an error of kexec_file_load with %w, naming the call
// and its arguments, and says in words what the errno means and how to fix it.
func ExplainLoadError(err error, a LoadAttempt) error {
	return fmt.Errorf("SYS_kexec_file_load(kernel %q, initrd %q, cmdline %d bytes, flags %#x) = %w%s",
		a.Kernel, a.Initrd, len(a.Cmdline), a.Flags, err, explanation(err, a))
}

// explanation returns ": <what went wrong and the fix>", or "" for an
// errno it knows nothing about.
func explanation(err error, a LoadAttempt) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return ""
	}
	var s string
	switch errno {
	case syscall.EADDRNOTAVAIL:
		switch {
		case a.Reserved == 0:
			s = "no memory is reserved for a crash kernel: add crashkernel=" + suggest(a) + " to the kernel command line and reboot"
		default:
			s = fmt.Sprintf("the kernel and initrd do not fit in the %.1f MiB crash reservation", mib(a.Reserved))
			if a.Required > 0 {
				s += fmt.Sprintf(" (about %.1f MiB needed)", mib(a.Required))
			}
			s += ": set crashkernel=" + suggest(a) + " on the kernel command line and reboot"
		}
	case syscall.ENOEXEC:
		s = fmt.Sprintf("%s is not a kernel image the running kernel can load (an x86-64 bzImage is expected): pass --kernel /boot/vmlinuz-<release>", a.Kernel)
	case syscall.EBADF:
		s = fmt.Sprintf("the kernel %q or the initrd %q is not a readable regular file", a.Kernel, a.Initrd)
	case syscall.EINVAL:
		s = fmt.Sprintf("the command line is %d bytes (at most %d fit on x86) or malformed, or the flags are not supported: shorten --append or --cmdline",
			len(a.Cmdline), MaxCmdline)
	case syscall.EPERM:
		s = permDenied(a)
	case errKeyRejected, errBadMsg, errNoKey, errNoData, errNoPkg:
		s = fmt.Sprintf("signature verification of %s failed (kernel lockdown or kexec.sig_enforce demands a kernel signed by a key in the kernel's keyrings): "+
			"use a signed kernel (your distribution's), sign it with a trusted key, or disable Secure Boot lockdown / kexec.sig_enforce", a.Kernel)
	case syscall.ENOMEM:
		s = "the running kernel could not allocate the kexec segments, or they do not fit the crash reservation: " +
			"free memory or set crashkernel=" + suggest(a)
	case syscall.EBUSY:
		s = "another kexec load or unload is running (a loaded crash kernel is replaced, not refused): try again"
	case syscall.ENOSYS:
		s = "no kexec_file_load: the running kernel was built without CONFIG_KEXEC_FILE, or this OS or architecture has none"
	default:
		return ""
	}
	return ": " + s
}

// suggest returns the crashkernel= value for a, e.g. "96M".
func suggest(a LoadAttempt) string {
	if a.Required == 0 {
		return "<size>M (see 'ukdump status')"
	}
	return fmt.Sprintf("%dM", CrashkernelMiB(a.Required))
}

// permDenied names the reasons for EPERM that a shows, or lists them all.
func permDenied(a LoadAttempt) string {
	var why []string
	if a.KexecLoadDisabled == "1" {
		why = append(why, "kexec is disabled until reboot (/proc/sys/kernel/kexec_load_disabled = 1): remove the sysctl setting that sets it and reboot")
	}
	if a.LoadLimitPanic == "0" {
		why = append(why, "no crash kernel loads are left (/proc/sys/kernel/kexec_load_limit_panic = 0)")
	}
	if mode := lockdownMode(a.Lockdown); mode != "" && mode != "none" {
		why = append(why, fmt.Sprintf("kernel lockdown is %q (Secure Boot): only a kernel signed by a trusted key can be loaded, use your distribution's signed kernel or sign %s", mode, a.Kernel))
	}
	if a.Euid != 0 {
		why = append(why, fmt.Sprintf("not running as root (euid %d; CAP_SYS_BOOT is needed)", a.Euid))
	}
	if len(why) == 0 {
		return "needs CAP_SYS_BOOT (run as root), kexec_load_disabled unset, and under Secure Boot lockdown a signed kernel"
	}
	return strings.Join(why, "; ")
}

// lockdownMode returns the active mode, in brackets, of /sys/kernel/security/lockdown.
func lockdownMode(s string) string {
	_, after, ok := strings.Cut(s, "[")
	if !ok {
		return ""
	}
	mode, _, _ := strings.Cut(after, "]")
	return mode
}
