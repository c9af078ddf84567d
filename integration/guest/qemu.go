// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Drives are the ways BootOptions.Drive and Extra attach a disk.
const (
	Virtio = "virtio" // virtio-blk: /dev/vda
	NVMe   = "nvme"   // an NVMe controller: /dev/nvme0n1
	SATA   = "sata"   // a disk on an AHCI controller (ich9-ahci, ide-hd): /dev/sda
	SCSI   = "scsi"   // a disk on a virtio-scsi controller (scsi-hd): /dev/sda
)

// An ExtraDisk is a disk attached besides the root disk.
type ExtraDisk struct {
	// Path is a raw image.
	Path string
	// Drive is how it is attached: Virtio, NVMe, SATA or SCSI.
	Drive string
}

// BootOptions configures Start.
type BootOptions struct {
	// Kernel and Initrd are the guest's own (Kernel gives their paths).
	Kernel, Initrd string
	// Disk is the image from Disk, attached read-write as Drive.
	Disk string
	// Drive is Virtio (default), NVMe, SATA or SCSI.
	Drive string
	// Extra are more disks, attached after Disk.
	Extra []ExtraDisk
	// Cmdline is the kernel command line. Default: DefaultCmdline(RootUUID).
	Cmdline string
	// RootUUID is the UUID Disk returned, for the default Cmdline.
	RootUUID string
	// Append is added to the end of Cmdline.
	Append string
	// Memory is QEMU's -m. Default: 1G.
	Memory string
	// Timeout bounds the whole run (QEMU runs under timeout(1)). Default: 10m.
	Timeout time.Duration
	// Args are more QEMU arguments.
	Args []string
	// Console, if set, receives the serial console's raw output.
	Console io.Writer
	// QEMU is the emulator. Default: qemu-system-x86_64.
	QEMU string
	// Reboot lets a guest reboot restart the guest (QEMU without
	// -no-reboot), for runs that crash and boot again; a power-off still
	// ends QEMU. Default: a reboot ends QEMU.
	Reboot bool
}

// DefaultCmdline returns the guest's kernel command line: root by UUID,
// mounted read-only by the initrd until systemd remounts it, the serial
// console, and a crash kernel reservation.
func DefaultCmdline(rootUUID string) string {
	return "root=UUID=" + rootUUID + " ro console=ttyS0 crashkernel=96M"
}

// A Line is one line of the serial console, without terminal escapes.
type Line struct {
	Text string
	At   time.Duration // since QEMU started
}

// A VM is a running QEMU guest. Call Wait (or Kill, then Wait) on every VM.
type VM struct {
	cmd   *exec.Cmd
	start time.Time

	mu      sync.Mutex
	lines   []Line
	next    int           // where the next Expect starts
	changed chan struct{} // closed and replaced at each new line
	done    chan struct{} // closed when QEMU has exited and the console is read
	err     error         // QEMU's exit, valid after done
	stderr  *tailBuffer   // QEMU's standard error, read after done
}

// Start boots opts.Disk in QEMU with TCG, -no-reboot unless opts.Reboot,
// in a new network namespace with nothing in it (unshare -n), under
// timeout(1). A guest power-off ends QEMU, and so does a reboot unless
// opts.Reboot.
func Start(ctx context.Context, opts BootOptions) (*VM, error) {
	args, err := opts.qemuArgs()
	if err != nil {
		return nil, err
	}
	if err := needTools("timeout", "unshare", args[0]); err != nil {
		return nil, err
	}
	t := opts.Timeout
	if t == 0 {
		t = 10 * time.Minute
	}
	cmd := exec.CommandContext(ctx, "timeout", append([]string{"--kill-after=10s", strconv.Itoa(int(t.Seconds())) + "s", "unshare", "--net", "--"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	vm := &VM{cmd: cmd, changed: make(chan struct{}), done: make(chan struct{}), stderr: stderr}
	vm.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		var r io.Reader = out
		if opts.Console != nil {
			r = io.TeeReader(out, opts.Console)
		}
		vm.read(r)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() == 124:
			err = fmt.Errorf("qemu: timed out after %v", t)
		case err != nil:
			err = fmt.Errorf("qemu: %w\n%s", err, stderr.b)
		}
		vm.mu.Lock()
		vm.err = err
		vm.mu.Unlock()
		close(vm.done)
	}()
	return vm, nil
}

// qemuArgs returns the emulator's command line.
func (o BootOptions) qemuArgs() ([]string, error) {
	if o.Kernel == "" || o.Initrd == "" || o.Disk == "" {
		return nil, errors.New("guest boot: Kernel, Initrd and Disk are required")
	}
	cmdline := o.Cmdline
	if cmdline == "" {
		if o.RootUUID == "" {
			return nil, errors.New("guest boot: RootUUID or Cmdline is required")
		}
		cmdline = DefaultCmdline(o.RootUUID)
	}
	if o.Append != "" {
		cmdline += " " + o.Append
	}
	q, mem := o.QEMU, o.Memory
	if q == "" {
		q = "qemu-system-x86_64"
	}
	if mem == "" {
		mem = "1G"
	}
	args := []string{q, "-accel", "tcg", "-m", mem,
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none", "-serial", "stdio"}
	if !o.Reboot {
		args = append(args, "-no-reboot")
	}
	args = append(args, "-kernel", o.Kernel, "-initrd", o.Initrd, "-append", cmdline)
	for i, d := range append([]ExtraDisk{{Path: o.Disk, Drive: o.Drive}}, o.Extra...) {
		a, err := driveArgs(i, d)
		if err != nil {
			return nil, err
		}
		args = append(args, a...)
	}
	return append(args, o.Args...), nil
}

// driveArgs attaches disk number i.
func driveArgs(i int, d ExtraDisk) ([]string, error) {
	id := fmt.Sprintf("disk%d", i)
	drive := "file=" + d.Path + ",format=raw"
	switch d.Drive {
	case "", Virtio:
		return []string{"-drive", drive + ",if=virtio"}, nil
	case NVMe:
		return []string{"-drive", drive + ",if=none,id=" + id, "-device", fmt.Sprintf("nvme,drive=%s,serial=ukdump-%s", id, id)}, nil
	case SATA:
		return []string{"-device", "ich9-ahci,id=ahci" + id, "-drive", drive + ",if=none,id=" + id,
			"-device", fmt.Sprintf("ide-hd,drive=%s,bus=ahci%s.0", id, id)}, nil
	case SCSI:
		return []string{"-device", "virtio-scsi-pci,id=scsi" + id, "-drive", drive + ",if=none,id=" + id,
			"-device", fmt.Sprintf("scsi-hd,drive=%s,bus=scsi%s.0", id, id)}, nil
	}
	return nil, fmt.Errorf("guest boot: disk %s: unknown drive %q (want %q, %q, %q or %q)", d.Path, d.Drive, Virtio, NVMe, SATA, SCSI)
}

// escapes matches the terminal control sequences systemd colours its status with.
var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r`)

func (vm *VM) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			l := Line{Text: escapes.ReplaceAllString(strings.TrimSuffix(s, "\n"), ""), At: time.Since(vm.start)}
			vm.mu.Lock()
			vm.lines = append(vm.lines, l)
			close(vm.changed)
			vm.changed = make(chan struct{})
			vm.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Expect waits for a console line that contains substr, after the line the
// previous Expect matched, and returns it. It fails when QEMU exits or ctx
// ends first, with the console's last lines.
func (vm *VM) Expect(ctx context.Context, substr string) (Line, error) {
	for {
		vm.mu.Lock()
		for i := vm.next; i < len(vm.lines); i++ {
			if strings.Contains(vm.lines[i].Text, substr) {
				vm.next = i + 1
				l := vm.lines[i]
				vm.mu.Unlock()
				return l, nil
			}
		}
		changed, err := vm.changed, vm.err
		exited := false
		select {
		case <-vm.done: // every line is in: the reader closes done after the last
			exited = true
		default:
		}
		vm.mu.Unlock()
		if exited {
			return Line{}, fmt.Errorf("console: no %q before QEMU exited (%v) after %v; last lines:\n%s",
				substr, err, time.Since(vm.start).Round(time.Millisecond), vm.tail(30))
		}
		select {
		case <-changed:
		case <-vm.done:
		case <-ctx.Done():
			return Line{}, fmt.Errorf("console: no %q after %v: %w; last lines:\n%s",
				substr, time.Since(vm.start).Round(time.Millisecond), ctx.Err(), vm.tail(30))
		}
	}
}

// Stderr returns the last 4 KiB QEMU wrote to its standard error (its
// warnings, e.g. of a device model's errors), once QEMU has exited; before,
// it is empty.
func (vm *VM) Stderr() string {
	select {
	case <-vm.done:
		return string(vm.stderr.b)
	default:
		return ""
	}
}

// Lines returns every console line so far.
func (vm *VM) Lines() []Line {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return append([]Line(nil), vm.lines...)
}

func (vm *VM) tail(n int) string {
	ls := vm.Lines()
	ls = ls[max(0, len(ls)-n):]
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "  %8.3fs %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

// Wait waits for QEMU to exit and returns how it ended. QEMU exits 0 for a
// guest power-off, reboot and kernel panic alike: judge a run by its console.
func (vm *VM) Wait() error {
	<-vm.done
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.err
}

// Kill stops QEMU (and timeout and unshare).
func (vm *VM) Kill() {
	select {
	case <-vm.done:
	default:
		// ESRCH: it exited between the check and the kill.
		_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// CommandLine returns the host command that runs the VM, quoted for a
// shell, to reproduce a run by hand.
func (vm *VM) CommandLine() string {
	q := make([]string, len(vm.cmd.Args))
	for i, a := range vm.cmd.Args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./=,:+@%-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
