// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_capture

package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ukdump/ukdump/initramfs"
	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/kexec"
	"github.com/ukdump/ukdump/internal/manifest"
	"github.com/ukdump/ukdump/internal/target"
)

// check is one line of ukdump test's report.
type check struct {
	ok   bool
	what string
}

// checks are what can be checked before a crash: the reservation, the
// loaded capture kernel, the image, and every target.
func (c Context) checks() []check {
	var cs []check
	add := func(ok bool, format string, args ...any) { cs = append(cs, check{ok, fmt.Sprintf(format, args...)}) }
	l := c.Loader
	st, err := l.Status()
	switch {
	case err != nil:
		add(false, "capture kernel state: %v", err)
	case st.ReservedBytes == 0:
		add(false, "no crashkernel= reservation: add crashkernel=256M to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot")
	default:
		add(true, "crashkernel= reservation: %s", collect.HumanBytes(st.ReservedBytes))
	}
	if err == nil {
		if st.Loaded {
			add(true, "capture kernel loaded")
		} else {
			add(false, "no capture kernel loaded: systemctl start ukdump.service (or ukdump load), and see its errors")
		}
	}
	kernel, err := l.DefaultKernel()
	if err != nil {
		add(false, "%v", err)
		return cs
	}
	rel, err := kernelRelease(kernel)
	if err != nil {
		add(false, "%v", err)
		return cs
	}
	b := c.defaultBuild(rel)
	switch why, err := c.staleness(b); {
	case err != nil:
		add(false, "image for %s: %v", rel, err)
	case why != "":
		add(false, "image %s is not current (%s): run ukdump load, which rebuilds and loads it", b.out, why)
	default:
		add(true, "image %s is current for kernel %s", b.out, rel)
		m, merr := l.Machine()
		if merr != nil {
			add(false, "this machine's size, for the size check: %v", merr)
		}
		need, err := kexec.Required(kernel, b.out, m)
		if rec, rerr := initramfs.ReadRecord(b.out); rerr == nil {
			need += rec.ExtraBytes() + kexec.CaptureCPUBytes(rec.CPUs) // S3 part buffers, module loading, the capture's CPUs
		}
		if err != nil {
			add(false, "size of %s: %v", b.out, err)
		} else if st.ReservedBytes > 0 && need > st.ReservedBytes {
			add(false, "the reservation (%s) is smaller than the %s the capture needs: set crashkernel=%dM", collect.HumanBytes(st.ReservedBytes), collect.HumanBytes(need), kexec.CrashkernelMiB(need))
		} else {
			add(true, "the capture needs about %s of the reservation (%s of it for this machine's %s of RAM and %d CPUs)", collect.HumanBytes(need), collect.HumanBytes(kexec.MachineBytes(m)), collect.HumanBytes(m.RAM), m.CPUs)
		}
	}
	cfg, err := c.readConfig()
	if err != nil {
		add(false, "%v", err)
		return cs
	}
	for i, t := range cfg.Targets {
		if msg, err := c.resolveTarget(t); err != nil {
			add(false, "target %d (%s): %v", i, t, err)
		} else {
			add(true, "target %d (%s): %s", i, t, msg)
		}
	}
	return cs
}

func (c Context) readConfig() (*config.Config, error) {
	data, err := os.ReadFile(c.configPath())
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.configPath(), err)
	}
	return cfg, nil
}

// resolveTarget checks that a target can be found now: its disk is here, or
// its server answers.
func (c Context) resolveTarget(t config.Target) (string, error) {
	switch {
	case t.IsNetwork():
		addr, err := t.NetAddr()
		if err != nil {
			return "", err
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return "", fmt.Errorf("cannot reach %s now: %w", addr, err)
		}
		conn.Close()
		return "reached " + addr, nil
	case t.AutoDevice():
		resolve := c.Resolve
		if resolve == nil {
			resolve = func(p string) (hostfs.FS, error) { return hostfs.Resolve(p, hostfs.Opts{}) }
		}
		f, err := resolve(t.Path)
		if err != nil {
			return "", err
		}
		return f.String(), nil
	default:
		d, err := blkid.Finder{}.Find(t.Device)
		if err != nil {
			return "", err
		}
		return "found " + d.String(), nil
	}
}

func (c Context) test(args []string) error {
	fs := c.flags("test", "[--yes]")
	yes := fs.Bool("yes", false, "after the checks, crash the machine (sysrq c) without asking, to prove the whole chain")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(c.Stdout, "ukdump test: what can be checked before a crash:")
	failed := 0
	for _, ch := range c.checks() {
		mark := "ok  "
		if !ch.ok {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(c.Stdout, "  %s %s\n", mark, ch.what)
	}
	if failed > 0 {
		return fmt.Errorf("test: %d of the checks failed: fix them first (no crash)", failed)
	}
	if !*yes && !c.confirm("This crashes the machine now, to prove that its dump is saved. Type yes to go on: ") {
		fmt.Fprintln(c.Stdout, "ukdump test: all checks passed; not crashing (ukdump test --yes crashes the machine to prove the whole chain)")
		return nil
	}
	// The capture marks the dump of a test crash in its manifest.
	if err := c.loadWith(kexec.LoadOpts{Append: "ukdump.test=1"}, false); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	fmt.Fprintln(c.Stdout, "ukdump test: crashing the machine now (sysrq c); the capture kernel saves the dump and reboots")
	crash := c.Crash
	if crash == nil {
		crash = sysrqCrash
	}
	if err := crash(); err != nil {
		return fmt.Errorf("test: crashing the machine: %w", err)
	}
	return nil
}

// confirm asks on a terminal; without one it is no.
func (c Context) confirm(question string) bool {
	f, ok := c.Stdin.(*os.File)
	if !ok {
		return false
	}
	if !isTerminal(f) {
		return false
	}
	fmt.Fprint(c.Stdout, question)
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

func sysrqCrash() error {
	unix.Sync()
	return os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0o200)
}

// report describes the newest dump on the machine's local targets.
func (c Context) report(w io.Writer) {
	cfg, err := c.readConfig()
	if err != nil {
		fmt.Fprintf(w, "last capture: cannot tell: %v\n", err)
		return
	}
	type dump struct {
		dir   string
		crash time.Time
	}
	var dumps []dump
	var notes []string
	for i, t := range cfg.Targets {
		dir, err := localDir(t)
		if err != nil {
			notes = append(notes, fmt.Sprintf("target %d (%s): %v", i, t, err))
			continue
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("target %d: %v", i, err))
			continue
		}
		for _, e := range ents {
			if _, crash, ok := target.ParseDumpDirName(e.Name()); ok && e.IsDir() {
				dumps = append(dumps, dump{filepath.Join(dir, e.Name()), crash})
			}
		}
	}
	sort.Slice(dumps, func(i, j int) bool { return dumps[i].crash.Before(dumps[j].crash) })
	// The capture leaves the sha256 of a dump on a local disk to this
	// boot (manifest.SHA256Pending): the newest first.
	for i := len(dumps) - 1; i >= 0; i-- {
		m, done, err := manifest.FillSHA256(dumps[i].dir)
		switch {
		case err != nil && m.SHA256Pending:
			notes = append(notes, err.Error())
		case err != nil:
			// An unreadable manifest: describeDumpDir says so for the newest.
		case done:
			fmt.Fprintf(w, "sha256 of %s: %s (left by the capture to this boot)\n", filepath.Join(dumps[i].dir, m.File), m.SHA256)
		}
	}
	if len(dumps) == 0 {
		fmt.Fprintln(w, "last capture: none (no dump directory on the local targets)")
	} else {
		d := dumps[len(dumps)-1]
		fmt.Fprintf(w, "last capture: %s\n", describeDumpDir(d.dir))
		if n := len(dumps); n > 1 {
			fmt.Fprintf(w, "dumps kept: %d (oldest %s)\n", n, dumps[0].dir)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// localDir is where a target's dumps are on this machine, if they are here.
func localDir(t config.Target) (string, error) {
	switch {
	case t.IsNetwork():
		return "", errors.New("on a server: not looked at")
	case t.AutoDevice():
		return t.Path, nil
	}
	d, err := blkid.Finder{}.Find(t.Device)
	if err != nil {
		return "", err
	}
	dir, ok, err := hostfs.MountOf(d.Path, t.Path, hostfs.Opts{})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s is not mounted here: mount it to see its dumps", d.Path)
	}
	return dir, nil
}

// describeDumpDir says what a dump directory's manifest says.
func describeDumpDir(dir string) string {
	m, err := manifest.Read(filepath.Join(dir, manifest.Name))
	if err != nil {
		return fmt.Sprintf("%s: no readable %s (%v): the capture stopped early; look at its files", dir, manifest.Name, err)
	}
	test := ""
	if m.Test {
		test = ", a test crash (ukdump test)"
	}
	head := fmt.Sprintf("the machine crashed at %s (kernel %s%s)", m.CrashTime.UTC().Format(time.RFC3339), m.KernelRelease, test)
	if m.Complete {
		sum := fmt.Sprintf("sha256 %.12s…", m.SHA256)
		if m.SHA256Pending {
			sum = "sha256 not computed yet"
		}
		return fmt.Sprintf("%s: saved %s (%s, %s %s, %s)", head, filepath.Join(dir, m.File), collect.HumanBytes(m.Size), m.Format, m.Compression, sum)
	}
	return fmt.Sprintf("%s: FAILED: %s; kept %s (%s)", head, m.Error, filepath.Join(dir, m.File), collect.HumanBytes(m.Size))
}
