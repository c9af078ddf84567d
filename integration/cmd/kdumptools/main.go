// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command kdumptools times Debian 12's kdump-tools on the guests ukdump's
// benchmark captures, for make bench's side-by-side table
// (integration/internal/incumbent).
//
// Synopsis:
//
//	go run ./integration/cmd/kdumptools [flags]
//
// Description:
//
//	An installed Debian 12 guest with kdump-tools crashes in QEMU, its capture
//	kernel boots the root file system and systemd and runs makedumpfile; the
//	host checks the dump (makedumpfile -R reassembles it, --dump-dmesg finds
//	the panic) and prints one line per size: "kdumptools: MEM: panic →
//	vmcore saved in S s; panic → rebooted in S s; dump N bytes (…)". The
//	guest boots once first, without crashing, so that kdump-tools makes its
//	initrd; each run boots a copy of that disk. Exits non-zero if a run
//	failed. Needs root and scripts/deps.sh.
//
// Options:
//
//	-out DIR          the runs' files, one directory per -mem (default out/kdumptools)
//	-mem M[,M...]     guest RAM, one run each (default 1G)
//	-smp N            guest CPUs (default 1)
//	-crashkernel M    crashkernel= (default 128M; kdump-tools needs 116M)
//	-kernel S         the kernel's series (default 6.1)
//	-timeout D        each QEMU run (default 30m)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ukdump/ukdump/integration/guest"
	"github.com/ukdump/ukdump/integration/internal/incumbent"
)

func main() {
	fs := flag.NewFlagSet("kdumptools", flag.ExitOnError)
	var o incumbent.Options
	out := fs.String("out", "out/kdumptools", "the runs' files")
	mems := fs.String("mem", "1G", "guest RAM, or a comma-separated list: one run each")
	fs.IntVar(&o.CPUs, "smp", 1, "guest CPUs")
	fs.StringVar(&o.Crashkernel, "crashkernel", "128M", "crashkernel=")
	series := fs.String("kernel", "6.1", "the kernel's series")
	fs.DurationVar(&o.Timeout, "timeout", 0, "each QEMU run (default 30m)")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		log.Fatalf("kdumptools: unexpected arguments %q", fs.Args())
	}
	rels, err := guest.HostReleases("/boot")
	if err != nil {
		log.Fatalf("kdumptools: %v", err)
	}
	rel, err := guest.LatestRelease(rels, *series+".")
	if err != nil {
		log.Fatalf("kdumptools: %v", err)
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := incumbent.Prepare(ctx, *out, rel, o.Log)
	if err != nil {
		log.Fatalf("kdumptools: %v", err)
	}
	defer os.Remove(d.Path)
	failed := 0
	for _, m := range strings.Split(*mems, ",") {
		o.Memory, o.Dir = m, filepath.Join(*out, m)
		res, err := incumbent.Run(ctx, d, o)
		if err != nil {
			fmt.Printf("kdumptools: %s: failed: %v\n", m, err)
			failed++
			continue
		}
		fmt.Printf("kdumptools: %s: panic → vmcore saved in %.1f s; panic → rebooted in %.1f s; dump %d bytes (makedumpfile %s, crashkernel=%s)\n",
			m, res.PanicToSaved.Seconds(), res.PanicToRebooted.Seconds(), res.Size, res.Args, o.Crashkernel)
	}
	if failed > 0 {
		os.Remove(d.Path)
		os.Exit(1)
	}
}
