// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cv "github.com/ukdump/ukdump/integration/internal/crashvm"

	"github.com/ukdump/ukdump/internal/config"
)

// killAfter is where the kill scenarios stop the capture: well inside the
// ~30 MB -d 31 zlib dump of a 1 GiB guest, and inside its full ELF core.
const killAfter = 10 << 20

var (
	// fullELF is a full ELF core: every page.
	fullELF = cv.Config{Format: "elf", Exclude: []string{"none"}, Targets: []cv.Target{cv.Disk}}
	// kdumpZlib is kdump-compressed with zlib (which Debian's makedumpfile
	// and crash read) at the default dump level 31.
	kdumpZlib = cv.Config{Format: "kdump", Compression: "zlib", Targets: []cv.Target{cv.Disk}}
	// kdumpDefault is kdump-compressed with ukdump's default codec.
	kdumpDefault = cv.Config{Format: "kdump", Targets: []cv.Target{cv.Disk}}
)

// with returns c with its targets replaced.
func with(c cv.Config, t ...cv.Target) cv.Config { c.Targets = t; return c }

// scenarios is the end-to-end table. Each run's files are in out/e2e-NAME
// (out/e2e for elf, whose core the interop tests read).
var scenarios = []struct {
	name   string
	sc     cv.Scenario
	checks []cv.Check
}{{
	name:   "elf", // a full ELF core to the disk
	sc:     cv.Scenario{Config: fullELF},
	checks: cv.Saved("vmcore", cv.ELFCore("vmcore")),
}, {
	name:   "kdump", // kdump zlib -d 31 to the disk
	sc:     cv.Scenario{Config: kdumpZlib},
	checks: cv.Saved("vmcore", cv.KdumpFile("vmcore", "zlib")),
}, {
	// To the test's sshd: a stream target gets a flattened dump, which
	// ukdump reassemble turns back into a normal file.
	// 112M, as the README says for network targets: the full busybox
	// (sftp, S3) makes a 4.0 MiB / 10.3 MiB image, 96.4 MiB needed.
	name:   "sftp",
	sc:     cv.Scenario{Config: with(kdumpZlib, cv.SFTP), Guest: cv.Guest{Crashkernel: "112M"}},
	checks: cv.Saved("vmcore.kdump", cv.Reassemble("vmcore", "vmcore.kdump"), cv.KdumpFile("vmcore.kdump", "zlib")),
}, {
	// An sftp target with nothing listening fails first, then the disk.
	// Disk and network in one image need crashkernel=112M: ukdump load
	// refuses 96M for it.
	name: "fallback",
	sc:   cv.Scenario{Config: with(kdumpZlib, cv.DeadSFTP, cv.Disk), Guest: cv.Guest{Crashkernel: "112M"}},
	checks: append(cv.Saved("vmcore", cv.KdumpFile("vmcore", "zlib")),
		cv.ConsoleHas(`ukdump: target 0 failed`)),
}, {
	// To the test's versitygw: a multipart upload of the flattened dump,
	// downloaded over S3 and reassembled. 112M saved it (measured), but
	// ukdump load's estimate (the image, 16 MiB of part buffers and the
	// machine's part) is 112.2 MiB: it asks for 128M.
	name: "s3",
	sc:   cv.Scenario{Config: with(kdumpZlib, cv.S3), Guest: cv.Guest{Crashkernel: "128M"}},
	checks: append(cv.Saved("vmcore.kdump", cv.Reassemble("vmcore", "vmcore.kdump"), cv.KdumpFile("vmcore.kdump", "zlib")),
		cv.ConsoleHas(`ukdump: s3: completed crash/.*/vmcore: [0-9]+ bytes in [0-9]+ parts`)),
}, {
	// An S3 endpoint with nothing listening fails first, then the disk.
	// S3 and disk in one image need crashkernel=128M: ukdump load counts
	// the upload's 16 MiB of part buffers and refuses 112M for it.
	name: "s3fallback",
	sc:   cv.Scenario{Config: with(kdumpZlib, cv.DeadS3, cv.Disk), Guest: cv.Guest{Crashkernel: "128M"}},
	checks: append(cv.Saved("vmcore", cv.KdumpFile("vmcore", "zlib")),
		cv.ConsoleHas(`ukdump: target 0 failed: bucket "dumps" at http://10.0.2.2:7071: .*connection refused`)),
}, {
	name:   "612", // a 6.12 kernel's crash captured by 6.12
	sc:     cv.Scenario{Config: kdumpZlib, Guest: cv.Guest{Kernel: "6.12", Crashkernel: "128M"}},
	checks: cv.Saved("vmcore", cv.KdumpFile("vmcore", "zlib")),
}, {
	name:   "612elf", // its full ELF core, for the interop tests' 6.12 page classes
	sc:     cv.Scenario{Config: fullELF, Guest: cv.Guest{Kernel: "6.12", Crashkernel: "128M"}},
	checks: cv.Saved("vmcore", cv.ELFCore("vmcore")),
}, {
	name:   "612x", // a 6.12 kernel's crash captured by a 6.1 capture kernel
	sc:     cv.Scenario{Config: kdumpZlib, Guest: cv.Guest{Kernel: "6.12", CaptureKernel: "6.1", Crashkernel: "128M"}},
	checks: cv.Saved("vmcore", cv.KdumpFile("vmcore", "zlib")),
}, {
	// A 64 GiB guest at crashkernel=96M: the capture's memory does not grow
	// with the machine (issue 12; before the windows, 128 GiB OOMed at 96M).
	// The default codec (LZO), whose dump of the 1.3 GiB of kernel pages
	// (mem_map is 1 GiB of them) is the fastest.
	name:   "big64",
	sc:     cv.Scenario{Config: kdumpDefault, Guest: cv.Guest{Memory: "64G"}},
	checks: cv.Saved("vmcore", cv.KdumpFile("vmcore", config.DefaultCompression)),
}, {
	// Two CPUs in the capture kernel (collect.cpus = 2): ukdump load passes
	// nr_cpus=2 and disable_cpu_apicid= of the boot CPU, the capture
	// compresses on both, and the reservation it asks for grows by
	// kexec.PerCaptureCPU (95.3 MiB: 96M still fits at 1 GiB). The guest
	// has three CPUs: the capture kernel starts on the one that panicked
	// and leaves the boot CPU out, so on two it would have one.
	name: "cpus2",
	sc: cv.Scenario{Config: func() cv.Config { c := kdumpDefault; c.CPUs = 2; return c }(),
		Guest: cv.Guest{CPUs: 3}},
	checks: append(cv.Saved("vmcore", cv.KdumpFile("vmcore", config.DefaultCompression)),
		cv.ConsoleHas(`Kernel command line: elfcorehdr=.* nr_cpus=2 irqpoll panic=10 disable_cpu_apicid=0`),
		cv.ConsoleHas(`ukdump: memory: .*; 2 CPUs online`)),
}, {
	// The capture dies abruptly mid-write, as if OOM-killed: the file
	// left is vmcore.incomplete, marked incomplete, and crash opens it.
	name:   "kill",
	sc:     cv.Scenario{Config: kdumpZlib, Fault: cv.Fault{KillAfter: killAfter}},
	checks: append(killed(), cv.Partial("kdump", "^the capture stopped while writing the dump")...),
}, {
	name:   "killelf",
	sc:     cv.Scenario{Config: fullELF, Fault: cv.Fault{KillAfter: killAfter}},
	checks: append(killed(), cv.Partial("elf", "^the capture stopped while writing the dump")...),
}, {
	// A disk far smaller than the dump (kdump, no compression, no pages
	// excluded: ~1 GiB whatever the guest does), retention.min_free 0 so
	// the capture starts: ENOSPC, the next target (a disk that is not
	// there), the failure action. (An ELF core would be refused by the
	// free-space check first.)
	name: "enospc",
	sc: cv.Scenario{
		Config: cv.Config{Format: "kdump", Compression: "none", Exclude: []string{"none"},
			Targets: []cv.Target{cv.Disk, cv.NoDisk}, Failure: "poweroff", MinFree: "0"},
		Fault: cv.Fault{DiskSize: "96M"},
	},
	checks: append([]cv.Check{
		cv.ConsoleHas(`ukdump: target 0 failed: .*no space left on device`),
		cv.ConsoleHas(`ukdump: target 1 failed`),
		cv.ConsoleHas(`ukdump: result=failed .*action=poweroff`),
		cv.FileHas("ukdump.log", "copy failed after"),
	}, cv.Partial("kdump", "no space left on device")...),
}}

// killed are the checks of a capture killed after killAfter bytes: it said
// so, init's death panicked the capture kernel, no result line; its disk's
// journal was replayed.
func killed() []cv.Check {
	return []cv.Check{
		cv.ConsoleHas(fmt.Sprintf(`ukdump: ukdump.e2e.kill_after: %d bytes written; dying now`, killAfter)),
		cv.ConsoleHas(`Kernel panic - not syncing: Attempted to kill init`),
		cv.ConsoleLacks(`ukdump: result=`),
		cv.JournalReplayed(),
	}
}

func TestE2E(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := cv.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	// Stop a hung QEMU before go test's -timeout panics and leaves it behind.
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	for _, tt := range scenarios {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(root, "out", "e2e-"+tt.name)
			if tt.name == "elf" {
				dir = filepath.Join(root, "out", "e2e")
			}
			r, err := cv.Prepare(ctx, root, dir, tt.sc, t.Logf)
			if err != nil {
				t.Fatalf("Prepare(%s) = %v", tt.name, err)
			}
			t.Logf("%v", r)
			res, err := r.Boot(ctx, 1)
			if err != nil {
				t.Fatalf("Boot(%s) = %v", tt.name, err)
			}
			problems := res.Check(tt.checks)
			for _, p := range problems {
				t.Errorf("%s: %v", tt.name, p)
			}
			if len(problems) > 0 {
				t.Logf("last console lines (%s):\n  | %s", res.SerialLog(), strings.Join(res.Tail(25), "\n  | "))
				return
			}
			t.Logf("PASS: %s: %s", tt.name, res.Summary())
		})
	}
}
