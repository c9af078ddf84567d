// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package cli implements the ukdump host command: build, load, unload,
// status, and the dump tools collect, info, reassemble and dmesg.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/kexec"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/version"
)

// Context is one invocation of ukdump.
type Context struct {
	Args           []string
	Stdout, Stderr io.Writer
	// Getenv reads the environment (SOURCE_DATE_EPOCH); default os.Getenv.
	Getenv func(string) string
	// Loader loads the crash kernel; the zero value uses the running system.
	Loader kexec.Loader
	// ConfigPath, ImageDir and Busybox replace layout.DefaultConfig,
	// layout.ImageDir and the busybox search where the default image is
	// built (load, test, status); for tests.
	ConfigPath, ImageDir, Busybox string
	// Resolve finds the file system that holds a path on this machine, for
	// targets without a device; default hostfs.Resolve. For tests.
	Resolve func(path string) (hostfs.FS, error)
	// Crash crashes the machine (ukdump test --yes); default: sysrq c.
	Crash func() error
	// Stdin is read for ukdump test's question; nil means no terminal.
	Stdin io.Reader
	// Ctx is cancelled to stop a long command (collect) early: main cancels
	// it on SIGINT and SIGTERM (SignalContext). Nil means never.
	Ctx context.Context
}

// SignalContext returns a context cancelled, with the signal as its cause,
// by the first SIGINT or SIGTERM; after it, the signals' default action
// returns (a second ^C kills). stop releases the handler.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(fmt.Errorf("interrupted by signal %v", s))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

const usage = `usage: ukdump COMMAND [flags]

commands:
  build   -c CONFIG -o IMAGE   assemble the capture initramfs
  load    --initrd IMAGE       load the capture kernel (kexec_file_load on crash)
  unload                       unload the capture kernel
  status                       show whether a capture kernel is loaded, and the last capture
  test [--yes]                 check what can be checked before a crash; --yes then crashes the machine
  collect [-d N] [--format F] [--compress C] IN OUT
                               write a dump (kdump-compressed, ELF or flattened) from an ELF core
  info [--json] DUMP           describe a dump: format, codec, kernel, pages, complete or not
  reassemble IN OUT            turn a flattened dump back into a normal file
  dmesg DUMP                   print the crashed kernel's log (as makedumpfile --dump-dmesg)
  version                      print the version

'ukdump COMMAND -h' describes a command's flags.`

// ErrUsage is returned for a command line that cannot be run.
var ErrUsage = errors.New("bad usage")

// Execute runs the command in c.Args.
func (c Context) Execute() error {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if len(c.Args) == 0 {
		fmt.Fprintln(c.Stderr, usage)
		return ErrUsage
	}
	cmd, args := c.Args[0], c.Args[1:]
	switch cmd {
	case "build":
		return c.build(args)
	case "load":
		return c.load(args)
	case "unload":
		return c.unload(args)
	case "status":
		return c.status(args)
	case "test":
		return c.test(args)
	case "collect":
		return c.collectCmd(args)
	case "info":
		return c.info(args)
	case "reassemble":
		return c.reassemble(args)
	case "dmesg":
		return c.dmesg(args)
	case "version":
		fmt.Fprintln(c.Stdout, "ukdump", version.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(c.Stdout, usage)
		return nil
	}
	fmt.Fprintln(c.Stderr, usage)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, cmd)
}

func (c Context) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "usage: ukdump %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Release is the running kernel's release (uname -r).
func Release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (c Context) load(args []string) error {
	fs := c.flags("load", "[--initrd IMAGE] [--kernel PATH] [--append ARGS] [--force] [--no-rebuild]")
	var o kexec.LoadOpts
	fs.StringVar(&o.Kernel, "kernel", "", "capture kernel (default /boot/vmlinuz-$(uname -r))")
	fs.StringVar(&o.Initrd, "initrd", "", "capture image (default "+layout.ImagePath("RELEASE")+" for the kernel's release, built or rebuilt first when missing or stale)")
	fs.StringVar(&o.Append, "append", "", "words added to the capture kernel's command line")
	fs.StringVar(&o.Cmdline, "cmdline", "", "use this command line instead of deriving it from /proc/cmdline")
	fs.BoolVar(&o.Force, "force", false, "load even if the reservation looks too small or the image belongs to another kernel release")
	noRebuild := fs.Bool("no-rebuild", false, "without --initrd: load the release's image as it is, even if stale")
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.loadWith(o, *noRebuild)
}

func (c Context) loadWith(o kexec.LoadOpts, noRebuild bool) error {
	l := c.Loader
	if l.Logf == nil {
		l.Logf = func(format string, args ...any) { fmt.Fprintf(c.Stdout, "ukdump load: "+format+"\n", args...) }
	}
	if err := c.prepareImage(&l, &o, noRebuild); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := l.Load(o); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fmt.Fprintf(c.Stdout, "ukdump load: capture kernel loaded (%s)\n", o.Initrd)
	return nil
}

func (c Context) unload(args []string) error {
	if err := parse(c.flags("unload", ""), args); err != nil {
		return err
	}
	if err := c.Loader.Unload(); err != nil {
		return fmt.Errorf("unload: %w", err)
	}
	fmt.Fprintln(c.Stdout, "ukdump unload: capture kernel unloaded")
	return nil
}

func (c Context) status(args []string) error {
	if err := parse(c.flags("status", ""), args); err != nil {
		return err
	}
	st, err := c.Loader.Status()
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	loaded := "not loaded"
	if st.Loaded {
		loaded = "loaded"
	}
	fmt.Fprintf(c.Stdout, "capture kernel: %s\ncrashkernel reservation: %s\n", loaded, collect.HumanBytes(st.ReservedBytes))
	if st.ReservedBytes == 0 {
		fmt.Fprintln(c.Stdout, "no memory is reserved: add crashkernel=256M to the kernel command line and reboot")
	}
	c.report(c.Stdout)
	return nil
}

func (c Context) configPath() string {
	if c.ConfigPath != "" {
		return c.ConfigPath
	}
	return layout.DefaultConfig
}

// imagePath is the image of a kernel release.
func (c Context) imagePath(release string) string {
	if c.ImageDir != "" {
		return filepath.Join(c.ImageDir, filepath.Base(layout.ImagePath(release)))
	}
	return layout.ImagePath(release)
}
