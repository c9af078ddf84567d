// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeSystem is a /proc and /sys under a temp dir, with a synthetic kernel
// (init_size 64 MiB) and a gzip initrd (~1 MiB unpacked, a few KiB compressed).
type fakeSystem struct {
	dir, kernel, initrd string
}

func newFakeSystem(t *testing.T, files map[string]string) fakeSystem {
	t.Helper()
	dir := t.TempDir()
	s := fakeSystem{dir: dir, kernel: filepath.Join(dir, "vmlinuz"), initrd: filepath.Join(dir, "ukdump.img")}
	all := map[string]string{
		"proc/cmdline":                        "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 quiet crashkernel=128M\n",
		"proc/sys/kernel/osrelease":           "6.1.0-test\n",
		"sys/kernel/kexec_crash_size":         "134217728\n",
		"sys/kernel/kexec_crash_loaded":       "0\n",
		"vmlinuz":                             string(bzImage(0x020f, 0x7f, 64<<20)),
		"ukdump.img":                          string(gzipped(t, bytes.Repeat([]byte{0}, 1<<20))),
		"proc/sys/kernel/kexec_load_disabled": "0\n",
		"proc/iomem":                          "00001000-0009fbff : System RAM\n00100000-3ffdffff : System RAM\n  01000000-01e02006 : Kernel code\n",
		"sys/devices/system/cpu/possible":     "0-1\n",
	}
	for k, v := range files {
		all[k] = v
	}
	for name, content := range all {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content == "<absent>" {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type loadCall struct {
	KernelOK, InitrdOK bool // fds are open
	Cmdline            string
	Flags              int
}

// loader returns a Loader on s whose FileLoad records its calls and returns ret.
func (s fakeSystem) loader(calls *[]loadCall, ret error) *Loader {
	return &Loader{
		ProcRoot: filepath.Join(s.dir, "proc"),
		SysRoot:  filepath.Join(s.dir, "sys"),
		FileLoad: func(kernelFd, initrdFd int, cmdline string, flags int) error {
			*calls = append(*calls, loadCall{kernelFd >= 0, initrdFd >= 0, cmdline, flags})
			return ret
		},
	}
}

func TestLoad(t *testing.T) {
	const derived = "console=ttyS0 reset_devices nr_cpus=1 irqpoll panic=10"
	for _, tt := range []struct {
		name      string
		files     map[string]string
		opts      func(s fakeSystem) LoadOpts
		ret       error
		wantErr   error
		wantMsg   []string
		wantCalls []loadCall
	}{
		{
			name: "loads",
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Append: "ukdump.action=poweroff"}
			},
			wantCalls: []loadCall{{true, true, derived + " ukdump.action=poweroff", fileOnCrash}},
		},
		{
			name: "verbatim cmdline plus append",
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Cmdline: "console=ttyS1", Append: "x=1"}
			},
			wantCalls: []loadCall{{true, true, "console=ttyS1 x=1", fileOnCrash}},
		},
		{
			name:  "two capture CPUs, the boot CPU left out",
			files: map[string]string{"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\ninitial apicid\t: 4\n\nprocessor\t: 1\ninitial apicid\t: 0\n"},
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, CPUs: 2}
			},
			wantCalls: []loadCall{{true, true, "console=ttyS0 reset_devices nr_cpus=2 irqpoll panic=10 disable_cpu_apicid=4", fileOnCrash}},
		},
		{
			name: "two capture CPUs, boot CPU unknown",
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, CPUs: 2}
			},
			wantCalls: []loadCall{{true, true, "console=ttyS0 reset_devices nr_cpus=2 irqpoll panic=10", fileOnCrash}},
		},
		{
			// 83.5 MiB for one CPU, 85.0 for two.
			name:    "each capture CPU enters the size check",
			files:   map[string]string{"sys/kernel/kexec_crash_size": "88080384\n"}, // 84 MiB
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, CPUs: 2} },
			wantErr: ErrReservationTooSmall,
			wantMsg: []string{"85.0 MiB needed", "1.5 for the capture kernel's 2 CPUs", "crashkernel=96M"},
		},
		{
			name:    "too small refused",
			files:   map[string]string{"sys/kernel/kexec_crash_size": "67108864\n"},
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd} },
			wantErr: ErrReservationTooSmall,
			wantMsg: []string{"64.0 MiB reserved", "83.5 MiB needed", "crashkernel=96M", "or use --force"},
		},
		{
			name:      "too small forced",
			files:     map[string]string{"sys/kernel/kexec_crash_size": "67108864\n"},
			opts:      func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Force: true} },
			wantCalls: []loadCall{{true, true, derived, fileOnCrash}},
		},
		{
			name:    "no reservation",
			files:   map[string]string{"sys/kernel/kexec_crash_size": "0\n"},
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Force: true} },
			wantErr: ErrNoReservation,
			wantMsg: []string{"add crashkernel=96M to the kernel command line and reboot"},
		},
		{
			name:    "no reservation file",
			files:   map[string]string{"sys/kernel/kexec_crash_size": "<absent>"},
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd} },
			wantErr: fs.ErrNotExist,
		},
		{
			name:    "no initrd",
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel} },
			wantMsg: []string{"--initrd"},
		},
		{
			name:    "default kernel from osrelease",
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Initrd: s.initrd} },
			wantErr: fs.ErrNotExist,
			wantMsg: []string{"/boot/vmlinuz-6.1.0-test"},
		},
		{
			name:    "not a bzImage",
			files:   map[string]string{"vmlinuz": "\x7fELF"},
			opts:    func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd} },
			wantErr: ErrNotBzImage,
		},
		{
			name:      "not a bzImage forced",
			files:     map[string]string{"vmlinuz": "\x7fELF"},
			opts:      func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Force: true} },
			wantCalls: []loadCall{{true, true, derived, fileOnCrash}},
		},
		{
			name: "cmdline too long",
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Append: strings.Repeat("x ", 1100)}
			},
			wantErr: ErrCmdlineTooLong,
		},
		{
			name: "verbatim cmdline too long",
			opts: func(s fakeSystem) LoadOpts {
				return LoadOpts{Kernel: s.kernel, Initrd: s.initrd, Cmdline: strings.Repeat("x ", 1100)}
			},
			wantErr: ErrCmdlineTooLong,
		},
		{
			name: "EPERM explained from the system's state",
			files: map[string]string{
				"proc/sys/kernel/kexec_load_disabled": "1\n",
				"sys/kernel/security/lockdown":        "none [integrity] confidentiality\n",
			},
			opts:      func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd} },
			ret:       syscall.EPERM,
			wantErr:   syscall.EPERM,
			wantMsg:   []string{"SYS_kexec_file_load(kernel ", "kexec_load_disabled = 1", `lockdown is "integrity"`},
			wantCalls: []loadCall{{true, true, derived, fileOnCrash}},
		},
		{
			name:      "EADDRNOTAVAIL explained with numbers",
			opts:      func(s fakeSystem) LoadOpts { return LoadOpts{Kernel: s.kernel, Initrd: s.initrd} },
			ret:       syscall.EADDRNOTAVAIL,
			wantErr:   syscall.EADDRNOTAVAIL,
			wantMsg:   []string{"do not fit in the 128.0 MiB crash reservation", "about 83.5 MiB needed", "crashkernel=96M"},
			wantCalls: []loadCall{{true, true, derived, fileOnCrash}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, tt.files)
			var calls []loadCall
			l := s.loader(&calls, tt.ret)
			var logs []string
			l.Logf = func(format string, args ...any) { logs = append(logs, format) }
			err := l.Load(tt.opts(s))
			wantOK := tt.wantErr == nil && tt.wantMsg == nil
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || (err == nil) != wantOK {
				t.Fatalf("Load() = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Load() = %q, want it to contain %q", err, s)
				}
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("FileLoad calls mismatch (-want, +got):\n%s", diff)
			}
			if len(tt.wantCalls) > 0 && len(logs) == 0 {
				t.Errorf("Load() logged nothing")
			}
		})
	}
}

func TestUnload(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ret     error
		wantMsg string
	}{
		{name: "ok"},
		{name: "EPERM", ret: syscall.EPERM, wantMsg: `SYS_kexec_file_load(-1, -1, "", 0x3) = operation not permitted: needs CAP_SYS_BOOT`},
		{name: "ENOSYS", ret: syscall.ENOSYS, wantMsg: "CONFIG_KEXEC_FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, nil)
			var calls []loadCall
			err := s.loader(&calls, tt.ret).Unload()
			if !errors.Is(err, tt.ret) || err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Unload() = %v, want %v containing %q", err, tt.ret, tt.wantMsg)
			}
			want := []loadCall{{false, false, "", fileUnload | fileOnCrash}}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("FileLoad calls mismatch (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   map[string]string
		want    Status
		wantErr error
	}{
		{name: "loaded", files: map[string]string{"sys/kernel/kexec_crash_loaded": "1\n"}, want: Status{Loaded: true, ReservedBytes: 128 << 20}},
		{name: "not loaded", want: Status{ReservedBytes: 128 << 20}},
		{name: "no reservation", files: map[string]string{"sys/kernel/kexec_crash_size": "0\n"}, want: Status{}},
		{name: "no kexec", files: map[string]string{"sys/kernel/kexec_crash_loaded": "<absent>"}, wantErr: fs.ErrNotExist},
		{name: "garbage size", files: map[string]string{"sys/kernel/kexec_crash_size": "lots\n"}, wantErr: strconv.ErrSyntax},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, tt.files)
			var calls []loadCall
			got, err := s.loader(&calls, nil).Status()
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("Status() = %+v, %v, want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestExplainLoadError(t *testing.T) {
	base := LoadAttempt{Kernel: "/boot/vmlinuz-6.1", Initrd: "/var/lib/ukdump/ukdump.img", Cmdline: "console=ttyS0", Flags: fileOnCrash,
		Reserved: 64 << 20, Required: 92 << 20}
	with := func(f func(a *LoadAttempt)) LoadAttempt { a := base; f(&a); return a }
	for _, tt := range []struct {
		name string
		err  error
		a    LoadAttempt
		want []string
	}{
		{name: "EADDRNOTAVAIL too small", err: syscall.EADDRNOTAVAIL, a: base,
			want: []string{"64.0 MiB crash reservation", "about 92.0 MiB needed", "crashkernel=96M"}},
		{name: "EADDRNOTAVAIL none", err: syscall.EADDRNOTAVAIL, a: with(func(a *LoadAttempt) { a.Reserved = 0 }),
			want: []string{"no memory is reserved", "add crashkernel=96M", "reboot"}},
		{name: "ENOEXEC", err: syscall.ENOEXEC, a: base, want: []string{"/boot/vmlinuz-6.1 is not a kernel image", "x86-64 bzImage"}},
		{name: "EBADF", err: syscall.EBADF, a: base, want: []string{"bad file descriptor: the kernel", "ukdump.img\" is not a readable regular file"}},
		{name: "EINVAL", err: syscall.EINVAL, a: base, want: []string{"command line is 13 bytes", "at most 2016"}},
		{name: "EPERM unknown cause", err: syscall.EPERM, a: base, want: []string{"CAP_SYS_BOOT (run as root)", "kexec_load_disabled", "signed kernel"}},
		{name: "EPERM disabled", err: syscall.EPERM, a: with(func(a *LoadAttempt) { a.KexecLoadDisabled = "1" }),
			want: []string{"kexec_load_disabled = 1"}},
		{name: "EPERM limit", err: syscall.EPERM, a: with(func(a *LoadAttempt) { a.LoadLimitPanic = "0" }),
			want: []string{"kexec_load_limit_panic = 0"}},
		{name: "EPERM lockdown", err: syscall.EPERM, a: with(func(a *LoadAttempt) { a.Lockdown = "none integrity [confidentiality]" }),
			want: []string{`lockdown is "confidentiality"`, "signed", "/boot/vmlinuz-6.1"}},
		{name: "EPERM lockdown none, not root", err: syscall.EPERM, a: with(func(a *LoadAttempt) { a.Lockdown = "[none] integrity confidentiality"; a.Euid = 1000 }),
			want: []string{"not running as root (euid 1000; CAP_SYS_BOOT"}},
		{name: "EKEYREJECTED", err: errKeyRejected, a: base, want: []string{"signature verification of /boot/vmlinuz-6.1 failed", "kexec.sig_enforce"}},
		{name: "EBADMSG", err: errBadMsg, a: base, want: []string{"signature verification"}},
		{name: "ENODATA", err: errNoData, a: base, want: []string{"signature verification"}},
		{name: "ENOMEM", err: syscall.ENOMEM, a: base, want: []string{"could not allocate", "crashkernel=96M"}},
		{name: "EBUSY", err: syscall.EBUSY, a: base, want: []string{"another kexec load or unload", "try again"}},
		{name: "ENOSYS", err: syscall.ENOSYS, a: base, want: []string{"CONFIG_KEXEC_FILE"}},
		{name: "other errno", err: syscall.EIO, a: base, want: []string{"input/output error"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ExplainLoadError(tt.err, tt.a)
			if !errors.Is(err, tt.err) {
				t.Errorf("errors.Is(ExplainLoadError(%v), %v) = false, want true", tt.err, tt.err)
			}
			prefix := `SYS_kexec_file_load(kernel "/boot/vmlinuz-6.1", initrd "/var/lib/ukdump/ukdump.img", cmdline 13 bytes, flags 0x2) = `
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("ExplainLoadError(%v) = %q, want prefix %q", tt.err, err, prefix)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ExplainLoadError(%v) = %q, want it to contain %q", tt.err, err, s)
				}
			}
		})
	}
}
