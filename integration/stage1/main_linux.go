// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command stage1 is /init of the end-to-end test's "production system": it
// loads the capture kernel with the real `ukdump load` and crashes the kernel
// with sysrq. On any failure it powers off, so a broken load costs seconds.
//
// Synopsis:
//
//	/init   (kernel command line: ukdump.e2e.append="ARGS" is passed to --append;
//	         ukdump.e2e.fill=MIB fills that much memory with mixed content first;
//	         ukdump.e2e.crash_cpu0=1 crashes on CPU 0, the boot CPU)
//
// The initramfs holds /ukdump, /boot/vmlinuz and /capture.img.
package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("stage1: FAILED: %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}} {
		os.MkdirAll(m[1], 0o755)
		if err := unix.Mount(m[0], m[1], m[2], 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m[1], err)
		}
	}
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := 0; fd < 3; fd++ {
			unix.Dup2(int(c.Fd()), fd)
		}
	}
	cl, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	if mib := cmdlineValue(string(cl), "ukdump.e2e.fill="); mib != "" {
		n, err := strconv.Atoi(mib)
		if err != nil {
			return fmt.Errorf("ukdump.e2e.fill=%q: %w", mib, err)
		}
		start := time.Now()
		filled = fill(n)
		fmt.Printf("stage1: filled %d MiB (random, text, zeros) in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	args := []string{"load", "--kernel", "/boot/vmlinuz", "--initrd", "/capture.img"}
	if cmdlineValue(string(cl), "ukdump.e2e.force=") == "1" {
		args = append(args, "--force") // to measure the crashkernel= floor below our own check
	}
	if v := cmdlineValue(string(cl), "ukdump.e2e.append="); v != "" {
		args = append(args, "--append", v)
	}
	fmt.Printf("stage1: /ukdump %s\n", strings.Join(args, " "))
	cmd := exec.Command("/ukdump", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ukdump load: %w", err)
	}
	fmt.Printf("stage1: loaded in %s; crashing the kernel\n", time.Since(start).Round(time.Millisecond))
	unix.Sync()
	if cmdlineValue(string(cl), "ukdump.e2e.crash_cpu0=") == "1" {
		// The write below runs on this thread, pinned to the boot CPU.
		runtime.LockOSThread()
		var cpus unix.CPUSet
		cpus.Set(0)
		if err := unix.SchedSetaffinity(0, &cpus); err != nil {
			return fmt.Errorf("ukdump.e2e.crash_cpu0: pin to CPU 0: %w", err)
		}
		fmt.Printf("stage1: crashing on CPU 0\n")
	}
	err = os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
	runtime.KeepAlive(filled)
	return err
}

// filled keeps the memory fill alive until the crash.
var filled [][]byte

// cmdlineValue returns the value of key (e.g. "a=") on a command line,
// unquoted.
func cmdlineValue(cl, key string) string {
	_, v, ok := strings.Cut(cl, " "+key)
	if !ok {
		return ""
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		v, _, _ = strings.Cut(v[1:], `"`)
	} else {
		v, _, _ = strings.Cut(v, " ")
	}
	return v
}

// fill makes the crashed kernel's memory look like a working machine's for
// the benchmarks: mib MiB in 1 MiB blocks, a third random (incompressible),
// a third text-like, a third zero pages (touched, so really allocated).
func fill(mib int) [][]byte {
	words := strings.Fields("the kernel panicked while the scheduler was holding a spinlock on cpu zero and the " +
		"watchdog fired; dump the page cache inode dentry slab buffer head ext4 journal commit block device request")
	// The fill is nearly all live data: collect garbage early, or the heap
	// target (2× live) outgrows the guest.
	debug.SetGCPercent(5)
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := make([][]byte, mib)
	for i := range blocks {
		b := make([]byte, 1<<20)
		switch i % 3 {
		case 0:
			for j := 0; j+8 <= len(b); j += 8 {
				binary.LittleEndian.PutUint64(b[j:], rng.Uint64())
			}
		case 1:
			line := make([]byte, 0, 64)
			for j := 0; j < len(b); {
				line = append(append(line[:0], words[rng.IntN(len(words))]...), ' ')
				line = append(strconv.AppendInt(line, int64(rng.IntN(1000)), 10), ' ')
				j += copy(b[j:], line)
			}
		case 2:
			for j := 0; j < len(b); j += 4096 {
				b[j] = 0 // touch the page
			}
		}
		blocks[i] = b
	}
	return blocks
}
