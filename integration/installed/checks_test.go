// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package installed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// manifest is what the test reads of the capture's manifest.json.
type manifest struct {
	File          string    `json:"file"`
	Format        string    `json:"format"`
	Compression   string    `json:"compression"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"`
	SHA256Pending bool      `json:"sha256_pending"`
	Complete      bool      `json:"complete"`
	Error         string    `json:"error"`
	KernelRelease string    `json:"kernel_release"`
	Host          string    `json:"host"`
	CrashTime     time.Time `json:"crash_time"`
	Target        string    `json:"target"`
	Test          *bool     `json:"test"` // nil: no "test" key
	MBPerSecond   float64   `json:"mb_per_second"`
	Durations     struct {
		Total float64 `json:"total"`
	} `json:"durations_seconds"`
}

func readManifest(file string) (*manifest, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &m, nil
}

// checkManifest checks what the capture says of a test crash of release
// saved whole as vmcore (at vmcore, on the host).
func checkManifest(m *manifest, vmcore, release string) []error {
	var errs []error
	if !m.Complete || m.Error != "" {
		errs = append(errs, fmt.Errorf(`manifest.json: "complete": %v, "error": %q; want a complete dump`, m.Complete, m.Error))
	}
	if m.File != "vmcore" || m.Format != "kdump" {
		errs = append(errs, fmt.Errorf(`manifest.json: "file": %q, "format": %q; want vmcore, kdump (the default config)`, m.File, m.Format))
	}
	if m.KernelRelease != release {
		errs = append(errs, fmt.Errorf(`manifest.json: "kernel_release": %q, want %s`, m.KernelRelease, release))
	}
	switch {
	case m.Test == nil:
		errs = append(errs, fmt.Errorf(`manifest.json has no "test" key: want "test": true for ukdump test's crash`))
	case !*m.Test:
		errs = append(errs, fmt.Errorf(`manifest.json: "test": false, want true for ukdump test's crash`))
	}
	sum, size, err := sha256File(vmcore)
	switch {
	case m.SHA256Pending:
		errs = append(errs, fmt.Errorf(`manifest.json: "sha256_pending": true after the boot report: ukdump status did not compute the sha256 the capture left to it`))
	case err != nil:
		errs = append(errs, err)
	case sum != m.SHA256:
		errs = append(errs, fmt.Errorf(`manifest.json: "sha256": %q, but the vmcore's is %s`, m.SHA256, sum))
	case size != m.Size:
		errs = append(errs, fmt.Errorf(`manifest.json: "size": %d, but the vmcore has %d bytes`, m.Size, size))
	}
	return errs
}

func sha256File(name string) (string, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkInfo checks that `ukdump info --json` sees vmcore as a complete
// kdump-compressed file; its output goes to info.json beside it.
func checkInfo(ctx context.Context, ukdump, vmcore string) error {
	out, err := exec.CommandContext(ctx, ukdump, "info", "--json", vmcore).CombinedOutput()
	if werr := os.WriteFile(filepath.Join(filepath.Dir(vmcore), "info.json"), out, 0o644); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("ukdump info --json %s: %w\n%s", vmcore, err, out)
	}
	var i struct {
		Format   string `json:"format"`
		Codec    string `json:"codec"`
		Complete bool   `json:"complete"`
	}
	if err := json.Unmarshal(out, &i); err != nil {
		return fmt.Errorf("ukdump info --json %s: %w\n%s", vmcore, err, out)
	}
	if i.Format != "kdump" || !i.Complete {
		return fmt.Errorf("ukdump info %s: format %q, complete %v; want a complete kdump file", vmcore, i.Format, i.Complete)
	}
	return nil
}

// A task is a task_struct crash found.
type task struct {
	addr   string // the task_struct's address
	pid    int
	comm   string
	kernel bool // a kernel thread (no mm)
}

// psLine is a line of crash's ps: PID PPID CPU TASK ST %MEM VSZ RSS COMM,
// the current task marked with ">"; PPID is -1 when crash could not read
// the parent.
var psLine = regexp.MustCompile(`(?m)^[> ]\s*(\d+)\s+-?\d+\s+\d+\s+([0-9a-f]{16})\s+[A-Z]{2}\s+[\d.]+\s+\d+\s+\d+\s+(\S.*)$`)

func parsePS(out string) []task {
	var ts []task
	for _, m := range psLine.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1]) // the regexp matched digits
		comm := strings.TrimSpace(m[3])
		ts = append(ts, task{addr: m[2], pid: pid, comm: strings.Trim(comm, "[]"), kernel: strings.HasPrefix(comm, "[")})
	}
	return ts
}

// listEntry is one task_struct of listTasks's output: its address, then
// "pid = N,", "comm = "NAME\000…",", "mm = 0x…,".
var listEntry = regexp.MustCompile(`(?m)^([0-9a-f]{16})\n\s+pid = (\d+),\n\s+comm = "([^"\\]*)[^\n]*\n\s+mm = (0x[0-9a-f]+),$`)

func parseList(out string) []task {
	var ts []task
	for _, m := range listEntry.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[2]) // the regexp matched digits
		ts = append(ts, task{addr: m[1], pid: pid, comm: m[3], kernel: m[4] == "0x0"})
	}
	return ts
}

// listTasks walks the kernel's list of tasks from init_task, as the
// kernel's own for_each_process does.
const listTasks = "list task_struct.tasks -h init_task -s task_struct.pid,comm,mm"

// btCommand is bt's header: PID: N  TASK: ...  CPU: N  COMMAND: "NAME".
var btCommand = regexp.MustCompile(`PID: (\d+)\s+TASK: ([0-9a-f]+)\s+CPU: \d+\s+COMMAND: "([^"]*)"`)

// A session is what a crash session found.
type session struct {
	took     time.Duration
	tasks    []task // from init_task's list
	ps       []task // from ps
	user     int    // tasks that are not kernel threads
	panicked string // bt's COMMAND
	out      string
}

// crashSession runs crash with vmlinux on vmcore (log, bt, ps, kmem -i and
// the walk of init_task's task list), its output in crash.txt beside vmcore,
// and checks it: the panic message in the log, the sysrq_handle_crash
// frame, the panicking task in ps, a task list of a real system (PID 1
// systemd, systemd's daemons, many tasks), the memory summary.
//
// The task list is checked on the kernel's list of tasks, not on ps: ps
// builds its table from init_pid_ns's xarray of struct pid, and Debian 12's
// crash 8.0.2 reads a struct pid without its numbers[] (a flexible array
// since Linux 6.5, and in Debian's 6.1.0-57 by a stable backport), so it
// finds no task there ("active task ... not found in PID hash") and lists
// only swapper/0 and the panicking task. crash 8.0.4 fixed it (upstream
// commit 8858006, "Fix failure of gathering task table on Linux 6.5-rc1 and
// later"). A full ELF core of the same crash, and makedumpfile -d 31 of it,
// show the same ps and the same task list as ukdump's -d 31 dump.
func crashSession(ctx context.Context, vmlinux, vmcore string) (*session, []error) {
	start := time.Now()
	// --kaslr=auto: the KASLR offset from the dump's VMCOREINFO, which
	// crash 8.0.2 does not find by itself for a 6.12 kernel.
	cmd := exec.CommandContext(ctx, "crash", "-s", "--kaslr=auto", vmlinux, vmcore)
	cmd.Stdin = strings.NewReader("log\nbt\nps\nkmem -i\n" + listTasks + "\nquit\n")
	outb, err := cmd.CombinedOutput()
	s := &session{took: time.Since(start), out: string(outb)}
	file := filepath.Join(filepath.Dir(vmcore), "crash.txt")
	if werr := os.WriteFile(file, outb, 0o644); werr != nil {
		return s, []error{werr}
	}
	if err != nil && strings.Contains(s.out, "invalid structure member offset: module_core_size") {
		return s, []error{fmt.Errorf(`%w: "invalid structure member offset: module_core_size" (%s)`, errCrashTooOld, file)}
	}
	if err != nil {
		return s, []error{fmt.Errorf("crash -s --kaslr=auto %s %s: %w (%s)", vmlinux, vmcore, err, file)}
	}
	var errs []error
	for _, w := range []struct{ s, what string }{
		{"Kernel panic - not syncing: sysrq triggered crash", "log: the panic message"},
		{"] sysrq_handle_crash at ", "bt: the sysrq_handle_crash frame"},
		{"TOTAL MEM", "kmem -i"},
	} {
		if !strings.Contains(s.out, w.s) {
			errs = append(errs, fmt.Errorf("crash session: no %q (%s) in %s", w.s, w.what, file))
		}
	}
	bt := btCommand.FindStringSubmatch(s.out)
	if bt == nil {
		return s, append(errs, fmt.Errorf("crash session: bt names no task (%s)", file))
	}
	s.panicked = bt[3]
	s.ps = parsePS(s.out)
	if !slices.ContainsFunc(s.ps, func(t task) bool { return t.addr == bt[2] }) {
		errs = append(errs, fmt.Errorf("crash session: ps does not list the panicking task %s (%s)", bt[2], file))
	}
	s.tasks = parseList(s.out)
	comms := map[string]bool{}
	for _, t := range s.tasks {
		if !t.kernel {
			s.user++
		}
		if t.pid == 1 && t.comm != "systemd" {
			errs = append(errs, fmt.Errorf("crash session: PID 1 is %q, want systemd", t.comm))
		}
		comms[t.comm] = true
	}
	// A real system has systemd's daemons besides PID 1 and the kernel
	// threads: a dump that lacks pages breaks the list.
	for _, c := range []string{"systemd", "systemd-journal", "systemd-udevd", s.panicked} {
		if !comms[c] {
			errs = append(errs, fmt.Errorf("crash session: the task list has no %s (%d tasks, %d not kernel threads; %s)", c, len(s.tasks), s.user, file))
		}
	}
	if len(s.tasks) < 30 || s.user < 4 {
		errs = append(errs, fmt.Errorf("crash session: the task list has %d tasks, %d not kernel threads; want a running system's (%s)", len(s.tasks), s.user, file))
	}
	return s, errs
}

// errCrashTooOld is crashSession's error when crash cannot start a session
// on the dump's kernel: Debian 12's crash 8.0.2 predates Linux 6.4's
// struct module_memory, and its module_init() stops on every 6.4+ kernel
// ("invalid structure member offset: module_core_size").
var errCrashTooOld = errors.New("crash cannot open a session on this kernel (Debian 12's crash 8.0.2 predates Linux 6.4's module layout)")

// minimalSession is what crash can still do with vmlinux on a kernel that is
// too new for it (errCrashTooOld): crash --minimal (log, sym, rd; no bt, ps
// or kmem), with the KASLR offset from the dump's VMCOREINFO. Its output
// goes to crash-minimal.txt beside vmcore. It checks the crashed kernel's
// log: its banner names release, the panic message, the sysrq_handle_crash
// frame of the kernel's own stack trace, and that crash's symbols resolve
// (sym sysrq_handle_crash).
func minimalSession(ctx context.Context, vmlinux, vmcore, release string) []error {
	cmd := exec.CommandContext(ctx, "crash", "-s", "--minimal", "--kaslr=auto", vmlinux, vmcore)
	cmd.Stdin = strings.NewReader("log\nsym sysrq_handle_crash\nquit\n")
	out, err := cmd.CombinedOutput()
	file := filepath.Join(filepath.Dir(vmcore), "crash-minimal.txt")
	if werr := os.WriteFile(file, out, 0o644); werr != nil {
		return []error{werr}
	}
	if err != nil {
		return []error{fmt.Errorf("crash -s --minimal --kaslr=auto %s %s: %w (%s)", vmlinux, vmcore, err, file)}
	}
	var errs []error
	for _, w := range []string{
		"] Linux version " + release + " ",
		"Kernel panic - not syncing: sysrq triggered crash",
		" sysrq_handle_crash+0x",
		" (t) sysrq_handle_crash ",
	} {
		if !strings.Contains(string(out), w) {
			errs = append(errs, fmt.Errorf("crash --minimal: no %q in %s", w, file))
		}
	}
	return errs
}
