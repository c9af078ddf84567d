// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package incumbent times Debian 12's own kdump service, kdump-tools, on the
// machines ukdump's benchmark captures (integration/internal/crashvm), so
// that make bench prints both side by side from one run on one host.
//
// The guest is an installed Debian 12 (integration/guest) with kdump-tools,
// makedumpfile and kexec-tools from the host's mirror and Debian's default
// /etc/default/kdump-tools (USE_KDUMP=1). It boots its own kernel and initrd
// from its own disk with crashkernel= (kdump-tools' floor is 116M: its initrd
// OOMs while unpacking below that). kdump-tools.service loads the capture
// kernel at boot (kdump-config load); a unit of ours, ordered after it,
// checks /sys/kernel/kexec_crash_loaded and crashes the kernel with sysrq.
// The capture kernel boots the same root file system and systemd, whose
// kdump-tools-dump.service saves the log and runs makedumpfile (Debian's
// MAKEDUMP_ARGS, -F -c -d 31: flattened, zlib, dump level 31) into
// /var/crash/STAMP/dump.STAMP, then reboots; QEMU runs with -no-reboot, so
// that ends it. kdump-config's messages go to the console too (a drop-in),
// so the console gives the times: panic → "saved vmcore", and panic → the
// capture kernel's reboot.
//
// The host then reads /var/crash off the disk with debugfs (no mount) and
// checks that the dump is one: reassembled by makedumpfile -R, its log
// (makedumpfile --dump-dmesg) must hold the panic. The guest has crashvm's
// QEMU options (TCG, -cpu max, one CPU unless told, the memory backend with
// reserve=off for big guests).
package incumbent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ukdump/ukdump/integration/guest"
	"github.com/ukdump/ukdump/integration/internal/crashvm"
)

// Packages are what the guest installs besides guest.BasePackages.
var Packages = []string{"kdump-tools", "makedumpfile", "kexec-tools"}

// Console lines.
const (
	prefix       = "incumbent: "
	loadedLine   = prefix + "kdump-tools loaded the crash kernel"
	crashingLine = prefix + "crashing"
	notLoaded    = prefix + "kdump-tools loaded no crash kernel"
	panicLine    = "Kernel panic - not syncing: sysrq triggered crash"
	// kdump-config savecore's message once makedumpfile has written the
	// dump (log_success_msg "saved vmcore in …").
	savedLine = "saved vmcore in"
)

// Options configures Run.
type Options struct {
	// Dir holds the run's files: a copy of the prepared disk (removed when
	// the run passes), the console log and the dump copied off the disk.
	Dir string
	// Memory is the guest's RAM (QEMU -m, e.g. 64G).
	Memory string
	// CPUs is the guest's CPUs. Default 1.
	CPUs int
	// Crashkernel is the reservation. Default 128M.
	Crashkernel string
	// Timeout bounds the QEMU run. Default 30m.
	Timeout time.Duration
	// Log receives progress. Default: discard.
	Log *slog.Logger
}

// A Result is what one crash of the kdump-tools guest gave.
type Result struct {
	PanicToSaved    time.Duration // panic → kdump-config's "saved vmcore"
	PanicToRebooted time.Duration // panic → the capture kernel's reboot (QEMU's exit)
	Dump            string        // the dump copied off the disk
	Size            int64         // its size in bytes
	Args            string        // the makedumpfile arguments kdump-config used

	panicAt time.Duration
}

// A Disk is the kdump-tools guest's disk after its first boot: kdump-tools
// has made its capture initrd (/var/lib/kdump/initrd.img-RELEASE, a
// mkinitramfs run of minutes under TCG), so a run's boot does not.
type Disk struct {
	Path, UUID, Release string
	root                string // the guest tree, for its kernel
}

// Prepare builds (or finds in the cache) the kdump-tools guest tree, makes
// its disk in dir and boots it once (1 GiB, no crash) until kdump-tools has
// loaded the capture kernel; then the guest powers off.
func Prepare(ctx context.Context, dir, release string, log *slog.Logger) (*Disk, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, t := range []string{"debugfs", "makedumpfile", "cp"} {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("incumbent: %w: run scripts/deps.sh", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := guest.Root(ctx, guest.RootOptions{Releases: []string{release}, Packages: Packages, Log: log})
	if err != nil {
		return nil, fmt.Errorf("incumbent: the kdump-tools guest: %w", err)
	}
	files := []guest.File{
		{Path: "/etc/systemd/system/" + crashUnitName, Data: []byte(crashUnit)},
		// kdump-config's messages on the console, for the times.
		{Path: "/etc/systemd/system/kdump-tools.service.d/console.conf", Data: []byte(consoleDropIn)},
		{Path: "/etc/systemd/system/kdump-tools-dump.service.d/console.conf", Data: []byte(consoleDropIn)},
	}
	def, err := os.ReadFile(filepath.Join(root, "etc/default/kdump-tools"))
	if err != nil {
		return nil, fmt.Errorf("incumbent: the guest's kdump-tools config: %w", err)
	}
	files = append(files, guest.File{Path: "/etc/default/kdump-tools", Data: enable(def)})
	// Room for a 256 GiB guest's dump: at dump level 31 it is mostly
	// mem_map (1/64 of RAM), which zlib shrinks several times; the image is
	// sparse.
	path, uuid, err := guest.Disk(ctx, root, guest.DiskOptions{Path: filepath.Join(dir, "prepared.img"), Size: 8 << 30,
		Files: files, Units: []string{crashUnitName}, Log: log})
	if err != nil {
		return nil, fmt.Errorf("incumbent: the kdump-tools guest's disk: %w", err)
	}
	d := &Disk{Path: path, UUID: uuid, Release: release, root: root}
	log.Info("incumbent: first boot (kdump-tools makes its initrd)")
	vm, err := d.boot(ctx, d.Path, filepath.Join(dir, "prepare-serial.log"), "1G", 1, "128M", false, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	if _, err = waitLoaded(ctx, vm); err != nil {
		vm.Kill()
	}
	if werr := vm.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("incumbent: the first boot: %w (console: %s)", err, filepath.Join(dir, "prepare-serial.log"))
	}
	return d, nil
}

// boot boots disk, a copy of d's (or d's own), with the console to the
// file console; with crash, the guest crashes once kdump-tools has loaded.
func (d *Disk) boot(ctx context.Context, disk, console, memory string, cpus int, crashkernel string, crash bool, timeout time.Duration) (*guest.VM, error) {
	mem, err := crashvm.ParseSize(memory)
	if err != nil {
		return nil, fmt.Errorf("incumbent: memory: %w", err)
	}
	vmlinuz, initrd, err := guest.Kernel(d.root, d.Release)
	if err != nil {
		return nil, err
	}
	con, err := os.Create(console)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-cpu", "max", "-smp", fmt.Sprint(max(cpus, 1))}, crashvm.MemoryArgs(mem)...)
	cmdline := "root=UUID=" + d.UUID + " ro console=ttyS0 crashkernel=" + crashkernel
	if crash {
		cmdline += " " + crashArg
	}
	vm, err := guest.Start(ctx, guest.BootOptions{Kernel: vmlinuz, Initrd: initrd, Disk: disk, Cmdline: cmdline,
		Memory: memory, Timeout: timeout, Args: args, Console: con})
	if err != nil {
		con.Close()
		return nil, err
	}
	go func() { vm.Wait(); con.Close() }()
	return vm, nil
}

// Run crashes a copy of the prepared disk d once with o's machine, lets
// kdump-tools capture the crash, and checks the dump.
func Run(ctx context.Context, d *Disk, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Crashkernel == "" {
		o.Crashkernel = "128M"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	disk := filepath.Join(o.Dir, "disk.img")
	if b, err := exec.CommandContext(ctx, "cp", "--sparse=always", d.Path, disk).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("incumbent: copying %s: %w\n%s", d.Path, err, b)
	}
	console := filepath.Join(o.Dir, "serial.log")
	o.Log.Info("incumbent: booting", "memory", o.Memory, "crashkernel", o.Crashkernel, "release", d.Release)
	vm, err := d.boot(ctx, disk, console, o.Memory, o.CPUs, o.Crashkernel, true, o.Timeout)
	if err != nil {
		return nil, err
	}
	res, err := watch(ctx, vm)
	if err != nil {
		vm.Kill()
	}
	if werr := vm.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("incumbent: %w (console: %s)", err, console)
	}
	res.finish(vm)
	if err := fetch(ctx, disk, o.Dir, res); err != nil {
		return nil, fmt.Errorf("incumbent: %w (disk kept: %s)", err, disk)
	}
	if err := os.Remove(disk); err != nil {
		o.Log.Warn("incumbent: removing the disk", "err", err)
	}
	return res, nil
}

// enable returns kdump-tools' default file with USE_KDUMP=1 (Debian 12's
// default already) and nothing else changed.
func enable(def []byte) []byte {
	if !useKdumpRE.Match(def) {
		return append(def, []byte("USE_KDUMP=1\n")...)
	}
	return useKdumpRE.ReplaceAll(def, []byte("USE_KDUMP=1"))
}

var useKdumpRE = regexp.MustCompile(`(?m)^#?[ \t]*USE_KDUMP=.*$`)

const crashUnitName = "incumbent-crash.service"

// crashArg on the kernel command line makes crashUnit crash the machine.
const crashArg = "incumbent.crash=1"

// crashUnit crashes the machine once kdump-tools.service has loaded the
// capture kernel, if the command line has crashArg; else, or if nothing is
// loaded, it powers the machine off. The capture kernel's systemd starts
// kdump-tools-dump.service alone (systemd.unit=), not this.
const crashUnit = `[Unit]
Description=ukdump bench: crash once kdump-tools has loaded
After=kdump-tools.service multi-user.target
Wants=kdump-tools.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec >/dev/console 2>&1; \
  echo "` + prefix + `cmdline: $(cat /proc/cmdline)"; \
  kdump-config show 2>&1 | sed "s/^/` + prefix + `show: /"; \
  if [ "$(cat /sys/kernel/kexec_crash_loaded)" != 1 ]; then echo "` + notLoaded + `"; systemctl --no-block poweroff; exit 1; fi; \
  echo "` + loadedLine + `"; \
  case " $(cat /proc/cmdline) " in *" ` + crashArg + ` "*) ;; *) systemctl --no-block poweroff; exit 0;; esac; \
  echo "` + crashingLine + `"; sync; echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger'

[Install]
WantedBy=multi-user.target
`

const consoleDropIn = "[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n"

// waitLoaded follows the console until kdump-tools has loaded the crash
// kernel, or said it could not.
func waitLoaded(ctx context.Context, vm *guest.VM) (guest.Line, error) {
	for {
		l, err := vm.Expect(ctx, prefix)
		if err != nil {
			return l, fmt.Errorf("kdump-tools did not load: %w", err)
		}
		if strings.Contains(l.Text, notLoaded) {
			return l, errors.New("kdump-tools.service loaded no crash kernel (kdump-config show on the console)")
		}
		if strings.Contains(l.Text, loadedLine) {
			return l, nil
		}
	}
}

// watch follows the console from the boot to kdump-tools' saved vmcore.
func watch(ctx context.Context, vm *guest.VM) (*Result, error) {
	if _, err := waitLoaded(ctx, vm); err != nil {
		return nil, err
	}
	p, err := vm.Expect(ctx, panicLine)
	if err != nil {
		return nil, fmt.Errorf("no panic: %w", err)
	}
	s, err := vm.Expect(ctx, savedLine)
	if err != nil {
		return nil, fmt.Errorf("kdump-tools saved no vmcore: %w", err)
	}
	return &Result{panicAt: p.At, PanicToSaved: s.At - p.At}, nil
}

// finish fills in what the console says once QEMU has exited: the reboot's
// time (the last line) and makedumpfile's arguments.
func (r *Result) finish(vm *guest.VM) {
	lines := vm.Lines()
	r.PanicToRebooted = lines[len(lines)-1].At - r.panicAt
	for _, l := range lines {
		// "running makedumpfile -F -c -d 31 /proc/vmcore | compress > …"
		// (after "running makedumpfile --dump-dmesg /proc/vmcore …").
		if _, a, ok := strings.Cut(l.Text, "running makedumpfile "); ok && !strings.HasPrefix(a, "--dump-dmesg") {
			r.Args, _, _ = strings.Cut(a, " /proc/vmcore")
		}
	}
}

// stampRE matches kdump-config's dump directories (date +%Y%m%d%H%M).
var stampRE = regexp.MustCompile(`^[0-9]{12}$`)

// fetch copies /var/crash's newest dump off the disk and checks that
// makedumpfile reads the panic out of it.
func fetch(ctx context.Context, disk, dir string, res *Result) error {
	img := fmt.Sprintf("%s?offset=%d", disk, guest.RootOffset)
	out, err := exec.CommandContext(ctx, "debugfs", "-R", "ls -p /var/crash", img).Output()
	if err != nil {
		return fmt.Errorf("debugfs ls /var/crash: %w", err)
	}
	var stamp string
	for _, f := range strings.Split(string(out), "\n") {
		// /inode/mode/uid/gid/name/size/
		if fields := strings.Split(f, "/"); len(fields) > 5 && stampRE.MatchString(fields[5]) && fields[5] > stamp {
			stamp = fields[5]
		}
	}
	if stamp == "" {
		return fmt.Errorf("no dump directory in /var/crash:\n%s", out)
	}
	local := filepath.Join(dir, "crash")
	if err := os.RemoveAll(local); err != nil {
		return err
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	if b, err := exec.CommandContext(ctx, "debugfs", "-R", "rdump /var/crash/"+stamp+" "+local, img).CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs rdump /var/crash/%s: %w\n%s", stamp, err, b)
	}
	res.Dump = filepath.Join(local, stamp, "dump."+stamp)
	st, err := os.Stat(res.Dump)
	if err != nil {
		return fmt.Errorf("kdump-tools' dump: %w", err)
	}
	res.Size = st.Size()
	// kdump-tools writes the flattened format (makedumpfile -F): reassemble
	// it with makedumpfile -R, then read its log.
	flat, err := os.Open(res.Dump)
	if err != nil {
		return err
	}
	defer flat.Close()
	core := filepath.Join(local, "vmcore.reassembled")
	dmesg := filepath.Join(local, "dmesg-check.txt")
	os.Remove(core)
	os.Remove(dmesg)
	cmd := exec.CommandContext(ctx, "makedumpfile", "-R", core)
	cmd.Stdin = flat
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("makedumpfile -R %s < %s: %w\n%s", core, res.Dump, err, b)
	}
	if b, err := exec.CommandContext(ctx, "makedumpfile", "--dump-dmesg", core, dmesg).CombinedOutput(); err != nil {
		return fmt.Errorf("makedumpfile --dump-dmesg %s: %w\n%s", core, err, b)
	}
	defer os.Remove(core)
	b, err := os.ReadFile(dmesg)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), panicLine) {
		return fmt.Errorf("%s: the dump's log has no %q", res.Dump, panicLine)
	}
	return nil
}
