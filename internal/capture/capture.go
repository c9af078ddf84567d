// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package capture is the program the capture kernel runs: it finds the
// crashed kernel's memory, saves it to the first target that works, writes
// the side files, and ends with the configured action — always.
//
// Nothing here assumes it is PID 1: the root directory, the clock, mounting,
// module loading and the final action are injected (Env), so the whole flow
// runs in tests against a fake root.
package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/dm"
	"github.com/ukdump/ukdump/internal/dmesg"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/lvm"
	"github.com/ukdump/ukdump/internal/manifest"
	"github.com/ukdump/ukdump/internal/netup"
	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// Results printed on the final line, "ukdump: result=<result> …".
const (
	ResultSaved  = "saved"
	ResultFailed = "failed"
	ResultNoDump = "nodump"
)

// Env is everything the capture touches outside its own memory.
type Env struct {
	// Root is the root directory ("/" in the capture kernel).
	Root string
	// Console receives the log (the serial console in the capture kernel).
	Console io.Writer
	// Kmsg, if set, also receives the log (/dev/kmsg), at debug level.
	Kmsg io.Writer
	// Now is the clock.
	Now func() time.Time
	// Mount and Unmount mount file systems (unix.Mount, unix.Unmount).
	Mount   target.MountFunc
	Unmount target.UnmountFunc
	// LoadModule loads one kernel module file (finit_module).
	LoadModule func(path string) error
	// NetworkUp brings the network up, once, when the first network target
	// is about to be tried (netup.Up in the capture kernel); Opts come with
	// the root, sysfs under it, the clock and the log filled in. Nil leaves
	// the network as it is.
	NetworkUp func(ctx context.Context, c config.Network, o netup.Opts) (netup.Result, error)
	// RouteTo waits for a route to a network target's host before it is
	// tried (netup.RouteTo); nil does not wait.
	RouteTo func(ctx context.Context, host string, o netup.Opts) (netup.Route, error)
	// Version is ukdump's version, recorded in the manifest.
	Version string
	// ProgressEvery is how often progress is printed (default 5s).
	ProgressEvery time.Duration
	// LimitMemory, if set, is given a soft memory limit for the Go runtime
	// (debug.SetMemoryLimit in the capture kernel).
	LimitMemory func(bytes int64)
	// Grace is how long after the deadline a hung capture is abandoned (default 30s).
	Grace time.Duration
	// NewTarget, if set, makes the target for the config's target i instead
	// of the disk or network target it describes, when it returns non-nil:
	// a seam for tests (a target that fails part-way).
	NewTarget func(i int, tc config.Target) target.Target
}

// Outcome is how a capture ended and what to do now.
type Outcome struct {
	Result string
	// Action is the final action to take: reboot, poweroff, halt or shell.
	Action string
	// Dir is the dump directory on the target that saved it.
	Dir    string
	Target string
	Err    error
}

// capture is one run.
type capture struct {
	env   Env
	cfg   *config.Config
	log   *logger
	start time.Time
	// cmdline is the capture kernel's command line.
	cmdline string
	// The crashed kernel's log, read for the first target that gets it.
	dmesg     []byte
	dmesgErr  error
	dmesgDone bool
	// netTried, netErr and netSecs are the network bring-up's: done once.
	netTried bool
	netErr   error
	netSecs  float64
}

// Run performs a capture and returns its outcome; it never panics and
// returns by the configured deadline (plus Grace) even if a step hangs.
// Every step, from the first mount to the outcome, runs inside that guard:
// until the config is read, the default deadline and failure action hold.
func Run(env Env) Outcome {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.ProgressEvery == 0 {
		env.ProgressEvery = 5 * time.Second
	}
	if env.Grace == 0 {
		env.Grace = 30 * time.Second
	}
	c := &capture{env: env, start: env.Now(), log: newLogger(env.Console, env.Kmsg, env.Now)}
	c.log.Printf("ukdump %s capture starting", env.Version)

	def := config.Default()
	failure, deadline := def.Action.Failure, def.Action.Deadline.Duration
	loaded := make(chan *config.Config, 1) // the config, once read: its deadline and failure action
	done := make(chan Outcome, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				action := def.Action.Failure
				if c.cfg != nil {
					action = c.cfg.Action.Failure
				}
				done <- Outcome{Result: ResultFailed, Action: action, Err: fmt.Errorf("internal error (Go panic): %v", r)}
			}
		}()
		done <- c.run(loaded)
	}()
	hung := time.NewTimer(deadline + env.Grace)
	defer hung.Stop()
	for {
		select {
		case cfg := <-loaded:
			failure, deadline = cfg.Action.Failure, cfg.Action.Deadline.Duration
			hung.Reset(deadline + env.Grace)
		case o := <-done:
			return c.finish(o)
		case <-hung.C:
			return c.finish(Outcome{Result: ResultFailed, Action: failure,
				Err: fmt.Errorf("capture hung: still running %s after the deadline of %s", env.Grace, deadline)})
		}
	}
}

// run is the whole capture, guarded by Run: the file systems, the memory
// limit, the config (sent on loaded, which starts its deadline), then the
// dump itself.
func (c *capture) run(loaded chan<- *config.Config) Outcome {
	c.setupFS()
	avail, desc := c.memAvailable()
	c.log.Printf("memory: %s; %d CPUs online (collect.cpus, nr_cpus=)", desc, runtime.GOMAXPROCS(0))
	if c.env.LimitMemory != nil && avail > 0 {
		// A soft limit for the Go runtime well inside what the capture
		// kernel has (the rest is for the kernel: network buffers, page
		// cache): the GC works harder instead of the kernel OOMing.
		c.env.LimitMemory(avail / 2)
	}
	cfg, err := c.loadConfig()
	c.cfg = cfg // on error, the defaults with the command line's overrides
	loaded <- cfg
	if err != nil {
		return Outcome{Result: ResultFailed, Action: cfg.Action.Failure, Err: err}
	}
	if cfg.Debug {
		c.log.debug = true
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), cfg.Action.Deadline.Duration,
		fmt.Errorf("capture deadline of %s passed (action.deadline)", cfg.Action.Deadline.Duration))
	defer cancel()
	return c.capture(ctx)
}

func (c *capture) finish(o Outcome) Outcome {
	switch o.Action {
	case config.ActionReboot, config.ActionPoweroff, config.ActionHalt, config.ActionShell:
	default:
		// Only a broken config or override gets here; reboot is the safe end.
		o.Action = config.ActionReboot
	}
	el := c.env.Now().Sub(c.start).Round(10 * time.Millisecond).Seconds()
	switch o.Result {
	case ResultSaved:
		c.log.Printf("result=saved target=%q dir=%s seconds=%.2f action=%s", o.Target, o.Dir, el, o.Action)
	case ResultNoDump:
		c.log.Printf("result=nodump seconds=%.2f action=%s: %v", el, o.Action, o.Err)
	default:
		c.log.Printf("result=failed seconds=%.2f action=%s: %v", el, o.Action, o.Err)
	}
	return o
}

func (c *capture) path(p string) string { return filepath.Join(c.env.Root, p) }

// setupFS mounts /proc, then /sys and /dev (devtmpfs) unless /proc/mounts
// lists them: the image's own dev/ holds only a few nodes, and this kernel
// does not mount devtmpfs on an initramfs by itself. Failures are logged, not
// fatal: later steps report what they miss.
func (c *capture) setupFS() {
	mount := func(src, dir, fstype string) {
		if err := os.MkdirAll(c.path(dir), 0o755); err != nil {
			c.log.Printf("warning: mkdir %s: %v", c.path(dir), err)
		}
		if err := c.env.Mount(src, c.path(dir), fstype, 0, ""); err != nil {
			c.log.Printf("warning: mount %s on %s: %v", fstype, c.path(dir), err)
		}
	}
	if _, err := os.Stat(c.path("proc/self")); err != nil {
		mount("proc", "proc", "proc")
	}
	mounts, err := os.ReadFile(c.path("proc/mounts"))
	if err != nil {
		c.log.Printf("warning: %v", err)
	}
	mounted := map[string]bool{}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			mounted[f[1]] = true
		}
	}
	if !mounted["/sys"] {
		mount("sysfs", "sys", "sysfs")
	}
	if !mounted["/dev"] {
		mount("devtmpfs", "dev", "devtmpfs")
	}
}

// memAvailable reports MemAvailable and MemTotal from /proc/meminfo: the
// capture kernel's headroom, the first thing to look at after an OOM.
func (c *capture) memAvailable() (int64, string) {
	data, err := os.ReadFile(c.path("proc/meminfo"))
	if err != nil {
		return 0, err.Error()
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			v[k] = strings.TrimSpace(val)
		}
	}
	kb, _ := strconv.ParseInt(strings.TrimSuffix(v["MemAvailable"], " kB"), 10, 64)
	return kb << 10, fmt.Sprintf("%s available of %s", v["MemAvailable"], v["MemTotal"])
}

// peakRSS is VmHWM from /proc/self/status: the capture's peak resident
// memory so far.
func (c *capture) peakRSS() string {
	data, err := os.ReadFile(c.path("proc/self/status"))
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadConfig reads the baked-in config and the ukdump.* overrides. On error
// it still returns a config whose failure action should be taken.
func (c *capture) loadConfig() (*config.Config, error) {
	fallback := config.Default()
	cl, err := os.ReadFile(c.path("proc/cmdline"))
	if err != nil {
		c.log.Printf("warning: %v", err)
	}
	c.cmdline = strings.TrimSpace(string(cl))
	// Honour an action override even when the config is broken.
	if _, err := fallback.ApplyCmdline(c.cmdline); err != nil {
		c.log.Debugf("cmdline overrides on defaults: %v", err)
	}
	data, err := os.ReadFile(c.path(layout.ConfigPath))
	if err != nil {
		return &fallback, fmt.Errorf("read config: %w (the image was not built by ukdump build?)", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return &fallback, err
	}
	applied, err := cfg.ApplyCmdline(c.cmdline)
	if len(applied) > 0 {
		c.log.Printf("command-line overrides: %s", strings.Join(applied, " "))
	}
	if err != nil {
		return &fallback, err
	}
	return cfg, nil
}

// errNoDump says this kernel has no crashed kernel's memory to save.
var errNoDump = errors.New("no dump to save: neither /proc/vmcore nor /dev/oldmem with elfcorehdr= exists (this is not a kdump capture kernel; was it booted directly?)")

// source is the crashed kernel's memory.
type source struct {
	r     io.ReaderAt
	core  *vmcore.Core
	name  string
	close func() error
}

func (c *capture) openSource() (*source, error) {
	vmcorePath := c.path("proc/vmcore")
	if _, err := os.Stat(vmcorePath); err == nil {
		f, err := vmcore.OpenFile(vmcorePath)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", vmcorePath, err)
		}
		core, err := vmcore.Open(f, f.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", vmcorePath, err)
		}
		return &source{r: f, core: core, name: "/proc/vmcore", close: f.Close}, nil
	}
	addr, ok, err := vmcore.ParseElfcorehdr(c.cmdline)
	if err != nil {
		return nil, err
	}
	oldmemPath := c.path("dev/oldmem")
	if _, serr := os.Stat(oldmemPath); serr != nil || !ok {
		return nil, errNoDump
	}
	f, err := os.Open(oldmemPath)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", oldmemPath, err)
	}
	im, core, err := vmcore.OpenOldmem(f, addr)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", oldmemPath, err)
	}
	return &source{r: im, core: core, name: fmt.Sprintf("/dev/oldmem (elfcorehdr=%#x)", addr), close: f.Close}, nil
}

// loadModules loads the image's modules in order. A module that fails is
// logged; the step that needs it reports the consequence.
func (c *capture) loadModules() {
	data, err := os.ReadFile(c.path(layout.ModulesLoadPath))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.log.Printf("warning: %v", err)
		return
	}
	start := c.env.Now()
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := c.env.LoadModule(c.path(line)); err != nil {
			c.log.Printf("warning: load module %s: %v", line, err)
			continue
		}
		n++
		c.log.Debugf("loaded %s", line)
	}
	c.log.Printf("loaded %d modules in %s", n, c.env.Now().Sub(start).Round(time.Millisecond))
}

// Manifest and Durations are manifest.json's (internal/manifest owns them).
type (
	Manifest  = manifest.Manifest
	Durations = manifest.Durations
)

func (c *capture) capture(ctx context.Context) Outcome {
	fail := func(err error) Outcome { return Outcome{Result: ResultFailed, Action: c.cfg.Action.Failure, Err: err} }
	src, err := c.openSource()
	if errors.Is(err, errNoDump) {
		return Outcome{Result: ResultNoDump, Action: c.cfg.Action.Final, Err: err}
	}
	if err != nil {
		return fail(err)
	}
	defer src.close()
	rel := ""
	if src.core.Info != nil {
		rel = src.core.Info.OSRelease()
	}
	c.log.Printf("source %s: %s in %d segments, %d CPUs, kernel %q", src.name, collect.HumanBytes(src.core.Size), len(src.core.Loads), src.core.CPUs(), rel)

	mstart := c.env.Now()
	c.loadModules()
	modSecs := c.env.Now().Sub(mstart).Seconds()

	m := Manifest{
		File: "vmcore", Source: src.name,
		MemoryBytes: src.core.MemoryBytes(), CPUs: src.core.CPUs(), KernelRelease: rel,
		Host: c.hostName(src), CaptureStart: c.start.UTC(), Version: c.env.Version,
		Test: c.cfg.Test, MachineID: c.machineID(),
	}
	m.Durations.Modules = round(modSecs)
	m.CrashTime, m.CrashTimeFrom = c.env.Now().UTC(), "capture clock"
	if src.core.Info != nil {
		if t, ok := src.core.Info.CrashTime(); ok {
			m.CrashTime, m.CrashTimeFrom = t, "VMCOREINFO CRASHTIME"
		}
	}

	var errs []error
	for i, tc := range c.cfg.Targets {
		if err := ctx.Err(); err != nil {
			errs = append(errs, context.Cause(ctx))
			break
		}
		t := c.newTarget(i, tc)
		c.log.Printf("target %d: %s", i, t)
		if tc.IsNetwork() {
			if err := c.networkUp(ctx, tc, &m); err != nil {
				c.log.Printf("target %d failed: %v", i, err)
				errs = append(errs, fmt.Errorf("target %d (%s): %w", i, t, err))
				continue
			}
		}
		dir, err := c.saveTo(ctx, t, src, m)
		if err == nil {
			return Outcome{Result: ResultSaved, Action: c.cfg.Action.Final, Dir: dir, Target: t.String()}
		}
		c.log.Printf("target %d failed: %v", i, err)
		errs = append(errs, fmt.Errorf("target %d (%s): %w", i, t, err))
	}
	return fail(fmt.Errorf("no target saved the dump: %w", errors.Join(errs...)))
}

func round(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }

// routeWait bounds the wait for a route to a network target's host.
const routeWait = 10 * time.Second

// networkUp brings the network up the first time a network target is
// tried, records how long that took in m, and waits for a route to the
// target's host. A failed bring-up is not retried: it fails this and every
// later network target, and the next target is tried.
func (c *capture) networkUp(ctx context.Context, tc config.Target, m *Manifest) error {
	o := netup.Opts{Root: c.env.Root, SysRoot: c.path("sys"), Logf: c.log.Printf, Now: c.env.Now}
	if !c.netTried && c.env.NetworkUp != nil {
		c.netTried = true
		start := c.env.Now()
		_, err := c.env.NetworkUp(ctx, c.cfg.Network, o)
		c.netSecs = round(c.env.Now().Sub(start).Seconds())
		if err != nil {
			c.netErr = fmt.Errorf("network bring-up failed after %.2fs: %w (see [network] in the config)", c.netSecs, err)
		}
	}
	m.Durations.Network = c.netSecs
	if c.netErr != nil {
		return c.netErr
	}
	if c.env.RouteTo == nil {
		return nil
	}
	host := tc.NetHost()
	if host == "" {
		return fmt.Errorf("parse %q: no host", tc.URL)
	}
	rctx, cancel := context.WithTimeout(ctx, routeWait)
	defer cancel()
	if _, err := c.env.RouteTo(rctx, host, o); err != nil {
		return err
	}
	return nil
}

func (c *capture) newTarget(i int, tc config.Target) target.Target {
	if c.env.NewTarget != nil {
		if t := c.env.NewTarget(i, tc); t != nil {
			return t
		}
	}
	if tc.IsNetwork() {
		return c.newNetTarget(tc)
	}
	return &target.Disk{
		Spec: tc.Device, Path: tc.Path, FSType: tc.FSType, Options: tc.MountOptions,
		Wait:       tc.WaitDevice.Duration,
		MountPoint: c.path(fmt.Sprintf(layout.MountDir+"/target%d", i)),
		Finder:     blkid.Finder{SysRoot: c.path("sys"), DevRoot: c.path("dev")},
		LVM: lvm.Activator{SysRoot: c.path("sys"), DevRoot: c.path("dev"), Probe: blkid.Probe, Logf: c.log.Printf,
			Control: dm.Control{ControlPath: c.path("dev/mapper/control"), Dir: c.path("dev/mapper")}}.Activate,
		Mount: c.env.Mount, Unmount: c.env.Unmount, Logf: c.log.Printf,
	}
}

// machineID is the production system's machine id, if the image has it.
func (c *capture) machineID() string {
	b, err := os.ReadFile(c.path(layout.MachineIDPath))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// hostName names the dump directory: the config's host, else the crashed
// kernel's node name (init_uts_ns in the kernel image), else "ukdump".
func (c *capture) hostName(src *source) string {
	if c.cfg.Host != "" {
		return c.cfg.Host
	}
	if n := nodeName(src.r, src.core); n != "" {
		return n
	}
	return "ukdump"
}

// saveTo writes the dump and its side files to one target.
func (c *capture) saveTo(ctx context.Context, t target.Target, src *source, m Manifest) (string, error) {
	ostart := c.env.Now()
	d, err := t.Open(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		if err := d.Close(); err != nil {
			c.log.Printf("warning: %v", err)
		}
	}()
	m.Target = d.String()
	m.Durations.Target = round(c.env.Now().Sub(ostart).Seconds())
	// The dump's size if collect knows it before writing; only min_free
	// is sure for a compressed one.
	need := int64(c.cfg.Retention.MinFree)
	if size, ok := collect.MaxSize(src.core, c.cfg.Collect.Format); ok {
		need += size
	}
	// Old dumps go only after the new one is whole (prune, below), except
	// when min_free cannot be kept otherwise: then this host's oldest go
	// first, and the log says so.
	removed, free, err := target.MakeRoom(d, target.Retention{Host: m.Host}, need)
	if len(removed) > 0 {
		c.log.Printf("retention: removed %s before the dump, to keep min_free (%s free, %s needed)",
			strings.Join(removed, ", "), collect.HumanBytes(free), collect.HumanBytes(need))
	}
	if err != nil {
		return "", err
	}
	if free < need {
		return "", fmt.Errorf("not enough space on %s: %s free, need %s (dump %s + min_free %s)", d,
			collect.HumanBytes(free), collect.HumanBytes(need), collect.HumanBytes(src.core.Size), collect.HumanBytes(int64(c.cfg.Retention.MinFree)))
	}

	name := target.DumpDirName(m.Host, m.CrashTime)
	for i := 1; ; i++ {
		err = d.Mkdir(name)
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			break
		}
		name = fmt.Sprintf("%s.%d", target.DumpDirName(m.Host, m.CrashTime), i)
	}
	if err != nil {
		return "", fmt.Errorf("make dump directory on %s: %w", d, err)
	}
	c.log.Printf("saving to %s/%s", d, name)
	if c.cfg.Collect.Dmesg {
		// The log first: if the dump cannot be saved, it is still there.
		if err := c.writeDmesg(d, name, src); err != nil {
			c.log.Printf("warning: %v", err)
			m.Warnings = append(m.Warnings, err.Error())
		}
	}

	c.reserveSideFiles(d, name, m)
	res, cerr := c.copy(ctx, d, name, src)
	m.Format, m.Compression, m.DumpLevel, m.Pages = res.Format, res.Codec, res.DumpLevel, res.Pages
	m.Warnings = append(m.Warnings, res.Warnings...)
	for _, w := range res.Warnings {
		c.log.Printf("warning: %s", w)
	}
	m.Size, m.SHA256, m.Complete = res.Bytes, res.SHA256, cerr == nil
	m.SHA256Pending = m.Complete && m.SHA256 == ""
	m.Durations.Copy = round(res.Duration.Seconds())
	if res.Duration > 0 { // of the crashed kernel's memory, whatever the output size
		m.MBPerSecond = round(float64(m.MemoryBytes) / res.Duration.Seconds() / 1e6)
	}
	if cerr != nil {
		m.File = "vmcore.incomplete"
		m.Error = cerr.Error()
		if dr, ok := d.(target.Dropper); ok {
			// Nothing of the dump stays (an S3 upload is aborted).
			m.File = ""
			m.Error += "; " + dr.DropsIncomplete()
			c.log.Printf("copy failed after %s: %v; %s", collect.HumanBytes(res.Bytes), cerr, dr.DropsIncomplete())
		} else {
			c.log.Printf("copy failed after %s: %v; keeping %s/vmcore.incomplete", collect.HumanBytes(res.Bytes), cerr, name)
		}
	} else {
		times := fmt.Sprintf("read %.1fs, write %.1fs", res.ReadTime.Seconds(), res.WriteTime.Seconds())
		sum := "sha256 left to the next boot (ukdump status)"
		if !m.SHA256Pending {
			times += fmt.Sprintf(", sha256 %.1fs", res.HashTime.Seconds())
			sum = "sha256 " + res.SHA256
		}
		c.log.Printf("saved %s (%s, %s, dump level %d) of %s memory in %.1fs (%.1f MB/s: %s), %s",
			collect.HumanBytes(res.Bytes), res.Format, res.Codec, res.DumpLevel, collect.HumanBytes(m.MemoryBytes), res.Duration.Seconds(), m.MBPerSecond,
			times, sum)
	}
	// What the dump cost: the figure that must not grow with the machine.
	_, avail := c.memAvailable()
	c.log.Printf("memory after the dump: %s; capture peak RSS %s", avail, c.peakRSS())
	if cerr == nil {
		// The new dump is whole: now this host's oldest may go.
		r := target.Retention{Host: m.Host, Keep: c.cfg.Retention.Keep, Exclude: name}
		if removed, err := target.Prune(d, r); err != nil {
			c.log.Printf("warning: %v", err)
		} else if len(removed) > 0 {
			c.log.Printf("retention (keep %d of %s's dumps): removed %s", r.Keep, r.Host, strings.Join(removed, ", "))
		}
	}
	m.Durations.Total = round(c.env.Now().Sub(c.start).Seconds())
	serr := c.writeSideFiles(d, name, m)
	if cerr != nil {
		return name, errors.Join(cerr, serr)
	}
	if serr != nil {
		return name, serr
	}
	return name, nil
}

// copy writes vmcore.incomplete, syncs it and renames it to vmcore.
// The sink decides whether the kdump format is flattened (collect.Collect):
// a remote file is a stream, restored by ukdump reassemble or makedumpfile -R.
func (c *capture) copy(ctx context.Context, d target.Dir, name string, src *source) (collect.Result, error) {
	inc, final := name+"/vmcore.incomplete", name+"/vmcore"
	f, err := d.Create(inc)
	if err != nil {
		return collect.Result{}, fmt.Errorf("create %s: %w", inc, err)
	}
	f = c.e2eHooks(f) // test-only fault injection (e2e.go); f itself unless asked for
	var last time.Time
	level, _ := c.cfg.Collect.Level() // validated with the config
	res, err := collect.Collect(ctx, src.r, src.core, f, collect.Options{
		Format:    c.cfg.Collect.Format,
		LowMemory: true,
		Codec:     c.cfg.Collect.Compression,
		DumpLevel: level,
		// A dump on this machine's disk is hashed at the next boot
		// (manifest.SHA256Pending); one sent away is hashed as it goes.
		NoHash: target.IsLocal(d),
		Now:    c.env.Now,
		Progress: func(p collect.Progress) {
			if now := c.env.Now(); now.Sub(last) >= c.env.ProgressEvery || p.Done == p.Total {
				last = now
				c.log.Printf("saving: %s", p)
			}
		},
	})
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("fsync %s: %w", inc, err)
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", inc, cerr)
	}
	if err != nil {
		return res, err
	}
	if err := d.Rename(inc, final); err != nil {
		return res, fmt.Errorf("rename %s to %s: %w", inc, final, err)
	}
	if err := d.SyncDir(name); err != nil {
		return res, fmt.Errorf("fsync directory %s: %w", name, err)
	}
	return res, nil
}

// readDmesg reads the crashed kernel's log from its memory.
func readDmesg(src *source) ([]byte, error) {
	if src.core.Info == nil {
		return nil, errors.New("the core has no VMCOREINFO")
	}
	k, err := dumpmem.NewKernel(dumpmem.FromELF(src.r, src.core), src.core.Info, src.core.Loads)
	if err != nil {
		return nil, err
	}
	return dmesg.Read(k)
}

// writeDmesg writes the crashed kernel's log, read from its memory, to
// vmcore-dmesg.txt and makes it durable.
func (c *capture) writeDmesg(d target.Dir, name string, src *source) error {
	if !c.dmesgDone { // read once, whatever the number of targets tried
		c.dmesgDone = true
		c.dmesg, c.dmesgErr = readDmesg(src)
	}
	if c.dmesgErr != nil {
		return fmt.Errorf("vmcore-dmesg.txt: %w", c.dmesgErr)
	}
	p := name + "/vmcore-dmesg.txt"
	if err := errors.Join(writeFile(d, p, c.dmesg), d.SyncDir(name)); err != nil {
		return err
	}
	c.log.Printf("wrote %s (%d bytes of the crashed kernel's log)", p, len(c.dmesg))
	return nil
}

// Room kept for the side files while the dump is written: a dump that fills
// the disk must still leave a manifest and a log saying so.
const (
	manifestReserve = 64 << 10
	logReserve      = 256 << 10
)

// reserveSideFiles writes manifest.json and ukdump.log before the dump,
// padded with white space to hold their blocks: if the capture dies
// mid-dump they say so (the manifest: complete false, the log: up to then),
// and if the dump fills the disk, writeSideFiles replaces them in the room
// they keep.
func (c *capture) reserveSideFiles(d target.Dir, name string, m Manifest) {
	m.File, m.Complete = "vmcore.incomplete", false
	m.Error = "the capture stopped while writing the dump (killed, out of memory, or power lost): vmcore.incomplete holds what it wrote"
	if _, ok := d.(target.Dropper); ok {
		m.File = ""
		m.Error = "the capture stopped while writing the dump (killed, out of memory, or power lost): there is no vmcore; the bucket's lifecycle rule (AbortIncompleteMultipartUpload) removes the parts uploaded"
	}
	mj, err := manifest.Marshal(m)
	if err != nil {
		c.log.Printf("warning: %v", err)
		return
	}
	pad := func(b []byte, n int) []byte { // JSON and a log both end in blanks
		if len(b) < n-1 {
			b = append(b, bytes.Repeat([]byte(" "), n-1-len(b))...)
		}
		return append(b, '\n')
	}
	if err := errors.Join(
		writeFile(d, name+"/manifest.json", pad(mj, manifestReserve)),
		writeFile(d, name+"/ukdump.log", pad(c.log.Bytes(), logReserve)),
		d.SyncDir(name),
	); err != nil {
		c.log.Printf("warning: reserving room for the side files: %v", err)
	}
}

func (c *capture) writeSideFiles(d target.Dir, name string, m Manifest) error {
	mj, err := manifest.Marshal(m)
	if err != nil {
		return err
	}
	errs := []error{writeFile(d, name+"/manifest.json", mj)}
	c.log.Printf("wrote %s/manifest.json", name)
	errs = append(errs, writeFile(d, name+"/ukdump.log", c.log.Bytes()))
	if err := d.SyncDir(name); err != nil {
		errs = append(errs, fmt.Errorf("fsync directory %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// writeFile writes a small file on a target and fsyncs it.
func writeFile(d target.Dir, p string, data []byte) error {
	f, err := d.Create(p)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	var errs []error
	if _, err := f.Write(data); err != nil {
		errs = append(errs, fmt.Errorf("write %s: %w", p, err))
	}
	if err := f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("fsync %s: %w", p, err))
	}
	if err := f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s: %w", p, err))
	}
	return errors.Join(errs...)
}

// logger writes "ukdump: " lines to the console and kmsg and keeps them for ukdump.log.
type logger struct {
	mu            sync.Mutex
	console, kmsg io.Writer
	now           func() time.Time
	start         time.Time
	buf           bytes.Buffer
	debug         bool
}

func newLogger(console, kmsg io.Writer, now func() time.Time) *logger {
	if console == nil {
		console = io.Discard
	}
	return &logger{console: console, kmsg: kmsg, now: now, start: now()}
}

// Printf logs a line.
func (l *logger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s\n", l.now().UTC().Format(time.RFC3339Nano), msg)
	fmt.Fprintf(l.console, "ukdump: %s\n", msg)
	if l.kmsg != nil {
		// Level 7 (debug): kept in the kernel log without printing twice on the console.
		fmt.Fprintf(l.kmsg, "<7>ukdump: %s\n", msg)
	}
}

// Debugf logs a line when debugging is on.
func (l *logger) Debugf(format string, args ...any) {
	if l.debug {
		l.Printf(format, args...)
	}
}

// Bytes is everything logged so far.
func (l *logger) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}
