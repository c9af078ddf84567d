// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"errors"
	"fmt"
	"strings"
)

// MaxCmdline is the longest capture command line, in bytes, that x86
// kexec_file_load accepts: the bzImage's cmdline_size (COMMAND_LINE_SIZE 2048
// less the NUL, i.e. 2047) less the terminating NUL the syscall counts, less
// 30 bytes (MAX_ELFCOREHDR_STR_LEN) the kernel keeps for the " elfcorehdr=0x…"
// it appends for a crash kernel. Longer lines fail with EINVAL.
const MaxCmdline = 2047 - 1 - 30

// ErrCmdlineTooLong is returned for a command line longer than MaxCmdline.
var ErrCmdlineTooLong = errors.New("capture kernel command line too long")

// captureArgs are appended to every derived capture command line: reset
// devices the crashed kernel left running, bring up cpus CPUs (each one
// costs memory: PerCaptureCPU), poll interrupts that may be misrouted, and
// reboot 10 s after a panic of the capture kernel instead of hanging. With
// more than one CPU, disable_cpu_apicid= keeps the capture kernel from
// waking the boot CPU (bootAPICID, "" if unknown): the capture kernel
// starts on the CPU that panicked, and an INIT sent to the boot CPU resets
// some machines (Documentation/admin-guide/kdump/kdump.rst; kernels from
// 6.9 skip that CPU themselves).
func captureArgs(cpus int, bootAPICID string) string {
	s := fmt.Sprintf("reset_devices nr_cpus=%d irqpoll panic=10", max(cpus, 1))
	if cpus > 1 && bootAPICID != "" {
		s += " disable_cpu_apicid=" + bootAPICID
	}
	return s
}

// dropParams are the parameters (by name, '-' read as '_' like the kernel
// does, with or without a value) that CaptureCmdline removes.
var dropParams = map[string]bool{
	// The reservation itself, and an old kernel's elfcorehdr.
	"crashkernel": true, "elfcorehdr": true,
	// Hide the capture's console output.
	"quiet": true, "splash": true, "rhgb": true,
	// Set by boot loaders for the system's own boot.
	"BOOT_IMAGE": true, "initrd": true,
	// The capture environment is the initramfs only: never mount the
	// system's root or run its init, and no in-kernel network boot.
	"root": true, "rootflags": true, "rootfstype": true, "rootwait": true, "rootdelay": true,
	"ro": true, "rw": true, "init": true, "rdinit": true, "ip": true, "nfsroot": true,
	// Resuming from hibernation would overwrite the memory being dumped.
	"resume": true, "resume_offset": true,
	// Replaced by captureArgs.
	"nr_cpus": true, "maxcpus": true, "irqpoll": true, "reset_devices": true, "panic": true, "disable_cpu_apicid": true,
	"kexec_jump_back_entry": true,
	// Panicking on a warning loses the dump.
	"panic_on_warn": true,
	// Memory layout: the crash kernel's memory map comes from kexec; mem= or
	// memmap= would cut it or add the crashed kernel's memory to it.
	"mem": true, "memmap": true,
	// Allocations sized for the whole machine that do not fit a small reservation.
	"hugepages": true, "hugepagesz": true, "default_hugepagesz": true, "hugetlb_cma": true,
	"cma": true, "swiotlb": true, "log_buf_len": true, "slub_debug": true,
}

// CaptureCmdline derives the capture kernel's command line from the running
// kernel's (/proc/cmdline): it keeps the words that still make sense (console=,
// earlyprintk, ukdump.*, …), drops dropParams and everything from "--" on
// (arguments for the system's init), appends captureArgs for a capture
// kernel of cpus CPUs (bootAPICID: the initial APIC ID of the running
// kernel's boot CPU, "" if unknown) and then extra, so extra's words win.
// Quoted values (foo="a b") stay one word. The result must not be longer
// than MaxCmdline.
func CaptureCmdline(procCmdline, extra string, cpus int, bootAPICID string) (string, error) {
	var out []string
	for _, w := range splitCmdline(procCmdline) {
		if w == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(w, `"`), "=")
		if !dropParams[strings.ReplaceAll(name, "-", "_")] {
			out = append(out, w)
		}
	}
	out = append(out, captureArgs(cpus, bootAPICID))
	if extra = strings.TrimSpace(extra); extra != "" {
		out = append(out, extra)
	}
	cmdline := strings.Join(out, " ")
	return cmdline, checkCmdlineLen(cmdline)
}

func checkCmdlineLen(cmdline string) error {
	if len(cmdline) > MaxCmdline {
		return fmt.Errorf("%w: %d bytes, at most %d fit (x86 COMMAND_LINE_SIZE 2048, less the NUL and room for elfcorehdr=): "+
			"shorten --append or pass a shorter --cmdline", ErrCmdlineTooLong, len(cmdline), MaxCmdline)
	}
	return nil
}

// splitCmdline splits a kernel command line into words as the kernel's
// next_arg does: at white space outside double quotes. Words keep their quotes.
func splitCmdline(s string) []string {
	var words []string
	start, quoted := -1, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		space := c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		switch {
		case space && !quoted:
			if start >= 0 {
				words = append(words, s[start:i])
				start = -1
			}
			continue
		case c == '"':
			quoted = !quoted
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		words = append(words, s[start:])
	}
	return words
}
