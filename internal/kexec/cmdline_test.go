// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCaptureCmdline(t *testing.T) {
	const tail = " reset_devices nr_cpus=1 irqpoll panic=10"
	for _, tt := range []struct {
		name, proc, extra, want string
	}{
		{name: "empty", want: strings.TrimSpace(tail)},
		{
			name: "debian",
			proc: "BOOT_IMAGE=/boot/vmlinuz-6.1.0-test-amd64 root=UUID=0a1b-2c ro quiet crashkernel=128M\n",
			want: strings.TrimSpace(tail),
		},
		{
			name: "keeps console and ukdump words",
			proc: "console=tty0 console=ttyS0,115200n8 earlyprintk=serial,ttyS0 ukdump.target=LABEL=dump splash rhgb",
			want: "console=tty0 console=ttyS0,115200n8 earlyprintk=serial,ttyS0 ukdump.target=LABEL=dump" + tail,
		},
		{
			name: "quoted value is one word",
			proc: `root=/dev/sda1 dyndbg="file foo.c +p" quiet`,
			want: `dyndbg="file foo.c +p"` + tail,
		},
		{
			name: "quoted dropped word",
			proc: `"init=/bin/my init" console=ttyS0 rootflags="subvol=@ rw"`,
			want: "console=ttyS0" + tail,
		},
		{
			name: "dash is underscore",
			proc: "nr-cpus=4 log-buf-len=1M default-hugepagesz=1G keep-me",
			want: "keep-me" + tail,
		},
		{
			name: "existing capture args replaced",
			proc: "irqpoll reset_devices nr_cpus=8 maxcpus=8 panic=0 panic_on_warn=1 kexec_jump_back_entry=0x1 elfcorehdr=0x1000",
			want: strings.TrimSpace(tail),
		},
		{
			name: "memory hogs and layout",
			proc: "hugepages=16 hugepagesz=1G default_hugepagesz=1G hugetlb_cma=1G cma=64M swiotlb=65536 log_buf_len=16M slub_debug=FZ mem=4G memmap=1G$4G cgroup_disable=memory numa_balancing=disable",
			want: "cgroup_disable=memory numa_balancing=disable" + tail,
		},
		{
			name: "root and init family",
			proc: "root=/dev/nfs nfsroot=10.0.0.1:/srv ip=dhcp rootfstype=ext4 rootwait rootdelay=5 rw init=/sbin/init rdinit=/init resume=/dev/sda2 resume_offset=42 initrd=/initrd.img",
			want: strings.TrimSpace(tail),
		},
		{
			name: "look-alikes stay",
			proc: "quietly rooted=1 initcall_debug panic_on_oops=1 noresume ip6=x",
			want: "quietly rooted=1 initcall_debug panic_on_oops=1 noresume ip6=x" + tail,
		},
		{
			name: "init arguments after -- dropped",
			proc: "console=ttyS0 quiet rdinit=/process_api -- --addr 0.0.0.0:2024 single",
			want: "console=ttyS0" + tail,
		},
		{
			name:  "extra last",
			proc:  "console=ttyS0\tcrashkernel=256M\n",
			extra: "  panic=30 ukdump.action=shell ",
			want:  "console=ttyS0" + tail + " panic=30 ukdump.action=shell",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CaptureCmdline(tt.proc, tt.extra, 1, "")
			if err != nil {
				t.Fatalf("CaptureCmdline(%q, %q, 1, \"\") = %v, want nil", tt.proc, tt.extra, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CaptureCmdline(%q, %q, 1, \"\") mismatch (-want, +got):\n%s", tt.proc, tt.extra, diff)
			}
		})
	}
}

func TestCaptureCmdlineLength(t *testing.T) {
	base, err := CaptureCmdline("", "", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	fill := func(n int) string { return "x=" + strings.Repeat("y", n-len(base)-1-2) } // " " + "x=" + y…
	for _, tt := range []struct {
		name  string
		extra string
		want  error
	}{
		{name: "at the limit", extra: fill(MaxCmdline)},
		{name: "one over", extra: fill(MaxCmdline + 1), want: ErrCmdlineTooLong},
		{name: "way over", extra: strings.Repeat("a ", 2000), want: ErrCmdlineTooLong},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CaptureCmdline("", tt.extra, 1, "")
			if !errors.Is(err, tt.want) {
				t.Fatalf("CaptureCmdline(\"\", %d bytes) = %v, want %v", len(tt.extra), err, tt.want)
			}
			if err == nil && len(got) != MaxCmdline {
				t.Errorf("len(CaptureCmdline(\"\", %d bytes)) = %d, want %d", len(tt.extra), len(got), MaxCmdline)
			}
		})
	}
}

func TestSplitCmdline(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: "  \n", want: nil},
		{in: "a b\tc\n", want: []string{"a", "b", "c"}},
		{in: `a="x y" "b=c d" e`, want: []string{`a="x y"`, `"b=c d"`, "e"}},
		{in: `a="unterminated b`, want: []string{`a="unterminated b`}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, splitCmdline(tt.in)); diff != "" {
				t.Errorf("splitCmdline(%q) mismatch (-want, +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestCaptureCmdlineCPUs: nr_cpus= is the capture's CPUs; with more than
// one, disable_cpu_apicid= names the boot CPU when it is known, and the
// running kernel's own nr_cpus=/disable_cpu_apicid= never pass through.
func TestCaptureCmdlineCPUs(t *testing.T) {
	for _, tt := range []struct {
		proc       string
		cpus       int
		boot, want string
	}{
		{"console=ttyS0", 0, "", "console=ttyS0 reset_devices nr_cpus=1 irqpoll panic=10"},
		{"console=ttyS0", 1, "2", "console=ttyS0 reset_devices nr_cpus=1 irqpoll panic=10"},
		{"console=ttyS0 nr_cpus=64 disable_cpu_apicid=7", 4, "2", "console=ttyS0 reset_devices nr_cpus=4 irqpoll panic=10 disable_cpu_apicid=2"},
		{"console=ttyS0", 2, "", "console=ttyS0 reset_devices nr_cpus=2 irqpoll panic=10"},
	} {
		got, err := CaptureCmdline(tt.proc, "", tt.cpus, tt.boot)
		if err != nil || got != tt.want {
			t.Errorf("CaptureCmdline(%q, %d, %q) = %q, %v; want %q", tt.proc, tt.cpus, tt.boot, got, err, tt.want)
		}
	}
}

func TestBootAPICID(t *testing.T) {
	for _, tt := range []struct{ cpuinfo, want, err string }{
		{"processor\t: 0\ninitial apicid\t: 6\n\nprocessor\t: 1\ninitial apicid\t: 0\n", "6", ""},
		{"processor\t: 1\ninitial apicid\t: 3\n\nprocessor\t: 0\ninitial apicid\t: 5\n", "5", ""},
		{"processor\t: 0\ninitial apicid\t: x\n", "", "bad initial apicid"},
		{"processor\t: 0\nvendor_id\t: ARM\n", "", "no initial apicid for processor 0"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "cpuinfo"), []byte(tt.cpuinfo), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := (&Loader{ProcRoot: dir}).BootAPICID()
		if got != tt.want || (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("BootAPICID(%q) = %q, %v; want %q, error %q", tt.cpuinfo, got, err, tt.want, tt.err)
		}
	}
}
