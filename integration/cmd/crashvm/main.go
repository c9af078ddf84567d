// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command crashvm runs one end-to-end scenario of integration/e2e outside go
// test: for the demo (a person reads the dump) and the benchmark (many runs,
// big guests).
//
// Synopsis:
//
//	go run ./integration/cmd/crashvm [flags]
//
// Description:
//
//	A real kernel crashes in QEMU and ukdump's capture kernel saves the dump
//	(integration/internal/crashvm); the host checks it as the e2e test checks
//	a saved dump, RUNS times, and prints a line for each run and the count
//	of passed and failed runs. It exits non-zero if one failed. Needs root
//	and make all out/stage1-init.
//
// Options:
//
//	-out DIR          the run's files (default out/crashvm)
//	-format F         kdump (default) or elf (a full ELF core)
//	-compress C       the kdump codec (default zlib; "" for ukdump's own default)
//	-target T         disk (default), sftp (the run's own sshd), or fallback
//	                  (an sftp port where nothing listens, then the disk)
//	-kernel S         the crashing kernel's series (default 6.1)
//	-capture-kernel S the capture kernel's series (default: -kernel)
//	-mem M            guest RAM (default 1G)
//	-smp N            guest CPUs (default 1)
//	-cpus N           collect.cpus, the capture kernel's nr_cpus= (default: ukdump's)
//	-crashkernel M    crashkernel= (default 96M)
//	-fill MIB         mixed content stage 1 writes to memory before the crash
//	-force            ukdump load --force, to find the crashkernel= floor
//	-crash-cpu0       crash on CPU 0 (the boot CPU): the capture kernel gets all -smp CPUs
//	-runs N           how many times (default 1)
//	-timeout D        for each QEMU run (default 10m)
//	-demo             print the dump for a person after the last run
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ukdump/ukdump/integration/internal/crashvm"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/manifest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		log.Fatalf("crashvm: %v", err)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("crashvm", flag.ContinueOnError)
	var (
		out      = fs.String("out", "out/crashvm", "the run's files")
		format   = fs.String("format", "kdump", "kdump or elf")
		compress = fs.String("compress", "zlib", "the kdump codec (\"\": ukdump's default)")
		target   = fs.String("target", "disk", "disk, sftp, s3 or fallback")
		runs     = fs.Int("runs", 1, "how many times")
		demo     = fs.Bool("demo", false, "print the dump for a person after the last run")
		sc       crashvm.Scenario
		r        *crashvm.Run
	)
	fs.StringVar(&sc.Guest.Kernel, "kernel", "6.1", "the crashing kernel's series")
	fs.StringVar(&sc.Guest.CaptureKernel, "capture-kernel", "", "the capture kernel's series (default: -kernel)")
	fs.StringVar(&sc.Guest.Memory, "mem", "1G", "guest RAM")
	fs.StringVar(&sc.Guest.Crashkernel, "crashkernel", "96M", "crashkernel=")
	fs.IntVar(&sc.Guest.CPUs, "smp", 1, "guest CPUs (QEMU -smp)")
	fs.IntVar(&sc.Config.CPUs, "cpus", 0, "collect.cpus: the capture kernel's nr_cpus= (0: ukdump's default)")
	fs.IntVar(&sc.Guest.Fill, "fill", 0, "MiB of mixed content stage 1 writes to memory before the crash")
	fs.BoolVar(&sc.Guest.Force, "force", false, "ukdump load --force")
	fs.BoolVar(&sc.Guest.CrashOnCPU0, "crash-cpu0", false, "crash on CPU 0, the boot CPU: the capture gets all -smp CPUs")
	timeout := fs.Duration("timeout", crashvm.DefaultTimeout, "for each QEMU run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	sc.Config.Format = *format
	codec := *compress // "": ukdump's default, which the checks expect
	if codec == "" {
		codec = config.DefaultCompression
	}
	var checks []crashvm.Check
	switch *format {
	case "elf":
		sc.Config.Exclude = []string{"none"}
		checks = crashvm.Saved("vmcore", crashvm.ELFCore("vmcore"))
	case "kdump":
		sc.Config.Compression = *compress
		checks = crashvm.Saved("vmcore", crashvm.KdumpFile("vmcore", codec))
	default:
		return fmt.Errorf("-format %q: want kdump or elf", *format)
	}
	switch *target {
	case "disk":
		sc.Config.Targets = []crashvm.Target{crashvm.Disk}
	case "sftp":
		sc.Config.Targets = []crashvm.Target{crashvm.SFTP}
		if *format == "kdump" {
			checks = crashvm.Saved("vmcore.kdump", crashvm.Reassemble("vmcore", "vmcore.kdump"), crashvm.KdumpFile("vmcore.kdump", codec))
		}
	case "s3":
		sc.Config.Targets = []crashvm.Target{crashvm.S3}
		if *format == "kdump" {
			checks = crashvm.Saved("vmcore.kdump", crashvm.Reassemble("vmcore", "vmcore.kdump"), crashvm.KdumpFile("vmcore.kdump", codec))
		}
	case "fallback":
		sc.Config.Targets = []crashvm.Target{crashvm.DeadSFTP, crashvm.Disk}
		checks = append(checks, crashvm.ConsoleHas(`ukdump: target 0 failed`))
	default:
		return fmt.Errorf("-target %q: want disk, sftp, s3 or fallback", *target)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := crashvm.FindRoot(wd)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(stdout, "e2e: "+format+"\n", args...) }
	if r, err = crashvm.Prepare(ctx, root, dir, sc, say); err != nil {
		return err
	}
	r.Timeout = *timeout
	pass, fail := 0, 0
	var last *crashvm.Result
	for n := 1; n <= *runs; n++ {
		say("run %d/%d: %v", n, *runs, r)
		res, err := r.Boot(ctx, n)
		if err != nil {
			return err
		}
		if problems := res.Check(checks); len(problems) > 0 {
			fail++
			for _, p := range problems {
				say("run %d: FAIL: %v", n, p)
			}
			say("last console lines (%s):", res.SerialLog())
			for _, l := range res.Tail(25) {
				fmt.Fprintf(stdout, "  | %s\n", l)
			}
			continue
		}
		pass++
		last = res
		say("run %d: PASS: %s", n, res.Summary())
	}
	if *demo && last != nil {
		if err := printDump(stdout, last); err != nil {
			return err
		}
	}
	say("%d passed, %d failed", pass, fail)
	if fail > 0 {
		return fmt.Errorf("%d of %d runs failed", fail, *runs)
	}
	return nil
}

// printDump shows a person what the capture saved: the files, a summary of
// manifest.json, and the end of the crashed kernel's log.
func printDump(w io.Writer, r *crashvm.Result) error {
	fmt.Fprintf(w, "\n== The dump: %s/%s (copied to %s) ==\n", r.Where, r.DumpName, r.Dump)
	for _, n := range r.Saved {
		st, err := os.Stat(r.File(n))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s %13d  %s\n", st.Mode(), st.Size(), n)
	}
	m, err := manifest.Read(r.File(manifest.Name))
	if err != nil {
		return err
	}
	p, d := m.Pages, m.Durations
	fmt.Fprintf(w, "\n== manifest.json (summary) ==\n")
	fmt.Fprintf(w, "  kernel      %s on host %s, crashed %s\n", m.KernelRelease, m.Host, m.CrashTime.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  dump        %s: %s, %s, dump level %d, %s bytes, complete: %v\n", m.File, m.Format, m.Compression, m.DumpLevel, thousands(m.Size), m.Complete)
	fmt.Fprintf(w, "  pages       %s of %s in the dump (%s zero)\n", thousands(int64(p.Dumped)), thousands(int64(p.Total)), thousands(int64(p.Zero)))
	if m.SHA256Pending {
		fmt.Fprintf(w, "  sha256      left to the next boot (ukdump status computes it)\n")
	} else {
		fmt.Fprintf(w, "  sha256      %s\n", m.SHA256)
	}
	fmt.Fprintf(w, "  source      %s, %s bytes of memory, %d CPU(s)\n", m.Source, thousands(m.MemoryBytes), m.CPUs)
	fmt.Fprintf(w, "  took        %.1fs in the capture kernel (modules %.1fs, disk %.1fs, dump %.1fs at %.0f MB/s)\n", d.Total, d.Modules, d.Target, d.Copy, m.MBPerSecond)
	fmt.Fprintf(w, "  target      %s, ukdump %s\n", m.Target, m.Version)
	b, err := os.ReadFile(r.File("vmcore-dmesg.txt"))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	fmt.Fprintf(w, "\n== The crashed kernel's last 20 log lines (vmcore-dmesg.txt, saved by the capture) ==\n")
	for _, l := range lines[max(0, len(lines)-20):] {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	return nil
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
