// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hugelgupf/vmtest/qemu"

	"github.com/ukdump/ukdump/internal/layout"
)

// Tools are the host programs a run needs besides QEMU's guest kernels.
var Tools = []string{"qemu-system-x86_64", "debugfs", "e2fsck", "mkfs.ext4", "makedumpfile", "crash", "readelf", "/usr/sbin/sshd"}

// Built are the files make builds that a run needs, relative to the
// repository (make all out/stage1-init).
var Built = []string{"out/ukdump", "out/bb", "out/bb-disk", "out/stage1-init"}

// DefaultTimeout bounds one QEMU run (a run takes 20-60 s under TCG).
const DefaultTimeout = 10 * time.Minute

// A Run is a scenario prepared in its directory: the capture image built from
// its config by `ukdump build`, stage 1's initramfs written, the sshd's keys
// made. Boot runs it, as many times as wanted.
type Run struct {
	Scenario
	// Dir holds every file of the run: ukdump.toml, capture.img,
	// stage1.cpio, disk.img, serial-N.log, ssh/, and dump/, the copy of
	// what the capture saved.
	Dir string
	// Root is the repository, with out/ukdump and the rest of Built.
	Root string
	// Kernel and Release are the crashing kernel's file and release;
	// CaptureKernel and CaptureRelease the capture kernel's.
	Kernel, Release, CaptureKernel, CaptureRelease string
	// Timeout bounds each QEMU run; 0 is DefaultTimeout.
	Timeout time.Duration
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Prepare checks the host, finds the kernels and builds what the scenario
// boots, in dir (made if needed).
func Prepare(ctx context.Context, root, dir string, sc Scenario, logf func(string, ...any)) (*Run, error) {
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("%s is missing (%w): run scripts/deps.sh", t, err)
		}
	}
	for _, f := range Built {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return nil, fmt.Errorf("%w: run make all out/stage1-init first", err)
		}
	}
	r := &Run{Scenario: sc, Dir: dir, Root: root, Logf: logf}
	var err error
	if r.Kernel, r.Release, err = FindKernel("/boot", sc.Guest.kernel()); err != nil {
		return nil, err
	}
	if r.CaptureKernel, r.CaptureRelease, err = FindKernel("/boot", sc.Guest.captureKernel()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if sc.Config.sftp() {
		if err := writeSSHD(r.sshDir(), sc.Config.Targets); err != nil {
			return nil, fmt.Errorf("the test's sshd: %w", err)
		}
	}
	if sc.Config.s3() {
		if err := writeS3(s3Dir(r.sshDir())); err != nil {
			return nil, fmt.Errorf("the test's S3 server: %w", err)
		}
	}
	toml := filepath.Join(dir, "ukdump.toml")
	if err := os.WriteFile(toml, []byte(sc.Config.TOML(r.sshDir())), 0o644); err != nil {
		return nil, err
	}
	img := filepath.Join(dir, "capture.img")
	build := exec.CommandContext(ctx, r.ukdump(), "build", "-c", toml, "-o", img, "--kver", r.CaptureRelease, "--generic=virtio") // for the guest, not this machine
	build.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	out, err := build.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ukdump build: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "build.txt"), out, 0o644); err != nil {
		return nil, err
	}
	logf("%s", bytes.TrimSpace(out))
	err = writeStage1(filepath.Join(dir, "stage1.cpio"), []stage1File{
		{"init", filepath.Join(root, "out/stage1-init"), 0o755},
		{"ukdump", r.ukdump(), 0o755},
		{"boot/vmlinuz", r.CaptureKernel, 0o644},
		{"capture.img", img, 0o600},
		// The record beside the image, as ukdump build leaves it: what
		// ukdump load reads of it (the largest module, collect.cpus).
		{"capture.img" + layout.RecordSuffix, img + layout.RecordSuffix, 0o644},
	})
	if err != nil {
		return nil, fmt.Errorf("stage 1's initramfs: %w", err)
	}
	return r, nil
}

func (r *Run) ukdump() string { return filepath.Join(r.Root, "out/ukdump") }

func (r *Run) timeout() time.Duration {
	if r.Timeout == 0 {
		return DefaultTimeout
	}
	return r.Timeout
}
func (r *Run) sshDir() string { return filepath.Join(r.Dir, "ssh") }

// bigGuest is the guest RAM from which QEMU gets a memory backend that
// reserves nothing.
const bigGuest = 8 << 30

// MemoryArgs returns QEMU's options for a guest of mem bytes besides -m:
// none for a small guest; from bigGuest on a RAM backend with reserve=off.
// QEMU cannot allocate a guest larger than the host otherwise; the guest
// touches only its struct pages (DESIGN.md, turn 2).
func MemoryArgs(mem int64) []string {
	if mem < bigGuest {
		return nil
	}
	return []string{"-object", fmt.Sprintf("memory-backend-ram,id=m0,size=%d,reserve=off", mem), "-machine", "memory-backend=m0"}
}

func (r *Run) disk() string { return filepath.Join(r.Dir, "disk.img") }

// String describes the run's machine, as the first line of its log.
func (r *Run) String() string {
	s := fmt.Sprintf("%s guest, crashkernel=%s, kernel %s (capture kernel %s), format %s",
		r.Guest.memory(), r.Guest.crashkernel(), r.Release, r.CaptureRelease, r.Config.Format)
	if r.Config.Compression != "" {
		s += " " + r.Config.Compression
	}
	if r.Guest.CPUs > 1 || r.Config.CPUs > 0 {
		s += fmt.Sprintf(", %d guest CPUs, collect.cpus %d", max(r.Guest.CPUs, 1), r.Config.CPUs)
	}
	return s
}

// A Line is one line of the serial console and when the host received it.
type Line struct {
	Time time.Time
	Text string
}

// Result is one boot of a run: the console, what the capture saved, copied to
// Dump, and what the harness did to read it.
type Result struct {
	*Run
	// N numbers the boots of a run from 1; the console is in serial-N.log.
	N int
	// Console holds the serial console's lines.
	Console []Line
	// TimedOut says QEMU was killed after Run.Timeout.
	TimedOut bool
	// Target is the kind of target the dump directory was found on (disk
	// or sftp), Where the place searched last.
	Target, Where string
	// DumpName is the dump directory the capture made there
	// (ukdump-20261201T215223Z); empty if there was none.
	DumpName string
	// Saved lists the files in it; each is copied to Dump.
	Saved []string
	// Dump is Dir/dump, the host copy of the dump directory. The checks
	// write their tools' output beside it.
	Dump string
	// Fsck is the journal replay of a killed capture's disk, if one ran.
	Fsck *Fsck
	// infos caches ukdumpInfo by file: several checks ask about one dump.
	infos map[string]*info
}

// Fsck is the result of e2fsck -E journal_only on the crashdump disk.
type Fsck struct {
	Status int    // e2fsck's exit status: 0 or 1 is success
	Log    string // where its output is
}

// File returns the host copy of a file of the dump directory.
func (r *Result) File(name string) string { return filepath.Join(r.Dump, name) }

// SerialLog is the console's file: each line after the host's Unix time.
func (r *Result) SerialLog() string { return filepath.Join(r.Dir, fmt.Sprintf("serial-%d.log", r.N)) }

// Find returns the first console line matching re.
func (r *Result) Find(re *regexp.Regexp) (Line, bool) {
	for _, l := range r.Console {
		if re.MatchString(l.Text) {
			return l, true
		}
	}
	return Line{}, false
}

// Tail returns the console's last n lines.
func (r *Result) Tail(n int) []string {
	var s []string
	for _, l := range r.Console[max(0, len(r.Console)-n):] {
		s = append(s, l.Text)
	}
	return s
}

var (
	sysrqLine = regexp.MustCompile(`sysrq: Trigger a crash`)
	savedLine = regexp.MustCompile(`ukdump: result=saved`)
	dumpDir   = regexp.MustCompile(`-[0-9]+T[0-9]+Z$`)
)

// PanicToSaved is the time from the crash (stage 1's sysrq) to the capture's
// result=saved line, by the host's clock.
func (r *Result) PanicToSaved() (time.Duration, bool) {
	c, ok1 := r.Find(sysrqLine)
	s, ok2 := r.Find(savedLine)
	return s.Time.Sub(c.Time), ok1 && ok2
}

// Boot runs the prepared scenario once: a fresh disk, QEMU in a network
// namespace of its own (with the test's sshd if the config has SFTP targets),
// then the dump directory copied to Dir/dump. An error means the harness
// failed; what the guest did is for the checks.
func (r *Run) Boot(ctx context.Context, n int) (*Result, error) {
	res := &Result{Run: r, N: n, Dump: filepath.Join(r.Dir, "dump")}
	size, err := ParseSize(r.Fault.diskSize())
	if err != nil {
		return nil, err
	}
	if err := makeDisk(ctx, r.disk(), size); err != nil {
		return nil, err
	}
	if r.Config.sftp() {
		up := filepath.Join(r.sshDir(), "crash")
		if err := errors.Join(os.RemoveAll(up), os.MkdirAll(up, 0o755)); err != nil {
			return nil, err
		}
	}
	if r.Config.s3() {
		if err := writeS3(s3Dir(r.sshDir())); err != nil { // an empty bucket
			return nil, err
		}
	}
	if err := r.qemu(ctx, res); err != nil {
		return nil, err
	}
	if r.Fault.KillAfter > 0 {
		// The capture died with the disk mounted: what it synced is in the
		// journal. Replay it, as the next mount would (debugfs does not).
		if res.Fsck, err = replayJournal(ctx, r.disk(), filepath.Join(r.Dir, "e2fsck.txt")); err != nil {
			return nil, err
		}
	}
	if err := errors.Join(os.RemoveAll(res.Dump), os.MkdirAll(res.Dump, 0o755)); err != nil {
		return nil, err
	}
	if err := r.fetch(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// qemu boots stage 1 and waits for QEMU to exit.
func (r *Run) qemu(ctx context.Context, res *Result) error {
	f, err := os.Create(res.SerialLog())
	if err != nil {
		return err
	}
	con := &console{w: f}
	defer con.Close() // vmtest closes it once QEMU ran; this if it never did
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	nic := "none"
	if r.Config.net() {
		nic = "user,model=virtio-net-pci"
	}
	fns := []qemu.Fn{
		qemu.WithQEMUCommand("qemu-system-x86_64"),
		qemu.WithKernel(r.Kernel),
		qemu.WithInitramfs(filepath.Join(r.Dir, "stage1.cpio")),
		qemu.WithAppendKernel(r.cmdline()...),
		qemu.WithSerialOutput(con),
		// -cpu max: TCG emulates SHA-NI and the like, so the capture's
		// sha256 of the dump is ~40% faster than with qemu64.
		qemu.ArbitraryArgs("-accel", "tcg", "-cpu", "max", "-m", r.Guest.memory(), "-smp", strconv.Itoa(max(r.Guest.CPUs, 1)), "-no-reboot",
			"-nic", nic, "-drive", "file="+r.disk()+",format=raw,if=virtio"),
	}
	if mem, err := ParseSize(r.Guest.memory()); err == nil {
		fns = append(fns, qemu.ArbitraryArgs(MemoryArgs(mem)...))
	}
	err = inNetNS(func() error {
		if r.Config.sftp() {
			stop, err := startSSHD(ctx, r.sshDir())
			if err != nil {
				return err
			}
			fns = append(fns, qemu.WithTask(qemu.Cleanup(stop)))
		}
		if r.Config.s3() {
			stop, err := startS3(ctx, s3Dir(r.sshDir()))
			if err != nil {
				return err
			}
			defer stop()
		}
		vm, err := qemu.StartContext(ctx, qemu.ArchAMD64, fns...)
		if err != nil {
			return fmt.Errorf("starting QEMU: %w", err)
		}
		// The command line to reproduce the run with (in a network
		// namespace, for SFTP); vmtest's StartT logs it the same way.
		qerr := os.WriteFile(filepath.Join(r.Dir, "qemu.txt"), []byte(vm.CmdlineQuoted()+"\n"), 0o644)
		// QEMU's exit status says nothing (0 for a panic too): only a
		// task's error (the sshd) is the harness's.
		var exit *exec.ExitError
		if err := vm.Wait(); err != nil && !errors.As(err, &exit) {
			return err
		}
		if r.Config.s3() {
			// Download what the guest uploaded while the server runs.
			if err := downloadS3(ctx, s3Dir(r.sshDir()), filepath.Join(r.Dir, "s3-download")); err != nil {
				return fmt.Errorf("download from the S3 server: %w", err)
			}
		}
		return qerr
	})
	res.Console = con.lines
	res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	return err
}

// fetch finds the dump directory at the first target that can have one and
// copies its files to res.Dump.
func (r *Run) fetch(ctx context.Context, res *Result) error {
	for _, t := range r.Config.Targets {
		switch {
		case t.S3Port == S3Port:
			dl := filepath.Join(r.Dir, "s3-download")
			res.Target, res.Where = "s3", "s3://"+S3Bucket+"/"+S3Prefix+" (downloaded)"
			des, err := os.ReadDir(dl)
			if err != nil {
				return err
			}
			for _, de := range des {
				if de.IsDir() && dumpDir.MatchString(de.Name()) {
					res.DumpName = de.Name()
					return copyDir(filepath.Join(dl, de.Name()), res)
				}
			}
		case t.SFTPPort == SSHPort:
			up := filepath.Join(r.sshDir(), "crash")
			res.Target, res.Where = "sftp", "the sftp server's "+up
			des, err := os.ReadDir(up)
			if err != nil {
				return err
			}
			for _, de := range des {
				if de.IsDir() && dumpDir.MatchString(de.Name()) {
					res.DumpName = de.Name()
					return copyDir(filepath.Join(up, de.Name()), res)
				}
			}
		case t.Label == Disk.Label:
			res.Target, res.Where = "disk", Disk.Path+" on the disk"
			ents, err := debugfsLs(ctx, r.disk(), Disk.Path)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if e.dir && dumpDir.MatchString(e.name) {
					res.DumpName = e.name
					return debugfsCopy(ctx, r.disk(), Disk.Path+"/"+e.name, res)
				}
			}
		}
	}
	return nil
}

// copyDir copies the regular files of dir to res.Dump.
func copyDir(dir string, res *Result) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		res.Saved = append(res.Saved, de.Name())
		if err := copyFile(filepath.Join(dir, de.Name()), res.File(de.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// console records the serial console: each line with the host's clock when it
// arrived, for the checks, and in the serial log as "SECONDS.MICROS line".
type console struct {
	w      io.WriteCloser
	part   []byte
	lines  []Line
	closed bool
}

// Write is called by one goroutine, vmtest's copy of QEMU's output.
func (c *console) Write(p []byte) (int, error) {
	now := time.Now()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			c.part = append(c.part, rest...)
			break
		}
		c.part = append(c.part, rest[:i]...)
		c.line(now)
		rest = rest[i+1:]
	}
	return len(p), nil
}

func (c *console) line(t time.Time) {
	s := strings.TrimRight(string(c.part), "\r")
	c.part = c.part[:0]
	c.lines = append(c.lines, Line{t, s})
	fmt.Fprintf(c.w, "%d.%06d %s\n", t.Unix(), t.Nanosecond()/1000, s)
}

// Close keeps a last line without a newline; vmtest closes the serial outputs
// when QEMU has exited.
func (c *console) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if len(c.part) > 0 {
		c.line(time.Now())
	}
	return c.w.Close()
}
