// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_capture

package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/initramfs"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/kexec"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/version"
)

// buildArgs are ukdump build's flags; load rebuilds with the defaults.
type buildArgs struct {
	config, out, busybox, kver, modDir, compress, sysRoot, devRoot string
	modules                                                        listFlag
	hostonly                                                       bool
	generic                                                        genericFlag
}

// genericFlag is --generic, which also takes the name of a set:
// --generic=all (the same) or --generic=virtio. Empty: host-only.
type genericFlag string

func (g *genericFlag) String() string { return string(*g) }

func (g *genericFlag) Set(s string) error {
	switch s {
	case "true", string(initramfs.Generic):
		*g = genericFlag(initramfs.Generic)
	case string(initramfs.GenericVirtio):
		*g = genericFlag(initramfs.GenericVirtio)
	case "false":
		*g = ""
	default:
		return fmt.Errorf("unknown set %q: want --generic (all) or --generic=virtio", s)
	}
	return nil
}

func (g *genericFlag) IsBoolFlag() bool { return true }

func buildFlags(fs *flag.FlagSet) *buildArgs {
	b := &buildArgs{}
	fs.StringVar(&b.config, "c", layout.DefaultConfig, "config file (TOML)")
	fs.StringVar(&b.out, "o", "", "image to write (default "+layout.ImagePath("KVER")+")")
	fs.StringVar(&b.busybox, "busybox", "", "capture busybox binary (default: bb or bb-disk beside ukdump, else in /usr/lib/ukdump or /usr/local/lib/ukdump)")
	fs.StringVar(&b.kver, "kver", "", "capture kernel release whose modules go in (default: the running kernel's)")
	fs.StringVar(&b.modDir, "modules-dir", "", "modules directory (default /lib/modules/KVER)")
	fs.StringVar(&b.compress, "compress", "gzip", "image compression: gzip, zstd, xz or none")
	fs.Var(&b.modules, "module", "extra kernel module to include with its dependencies (repeatable)")
	fs.Var(&b.generic, "generic", "build for other machines, not this one: instead of the drivers and file system of each disk target's device here "+
		"(found in sysfs; a target whose device is not here is an error), a broad set of storage drivers and file systems "+
		"(--generic=all: "+strings.Join(initramfs.GenericStorageModules, " ")+"; those the kernel lacks are skipped) "+
		"or the virtio set of QEMU/KVM guests (--generic=virtio: "+strings.Join(initramfs.DefaultModules(true, false), " ")+")")
	fs.BoolVar(&b.hostonly, "hostonly", false, "also include the driver modules of this machine's network interfaces (for network targets)")
	fs.StringVar(&b.sysRoot, "sysfs", "/sys", "sysfs to read this machine's block devices and network interfaces from")
	fs.StringVar(&b.devRoot, "dev", "/dev", "device nodes to probe for the disk targets' devices")
	return b
}

func (c Context) fill(b *buildArgs) {
	if b.kver == "" {
		b.kver = Release()
	}
	if b.out == "" {
		b.out = c.imagePath(b.kver)
	}
}

// defaultBuild is what ukdump build does with no flags, for a release: the
// image that load, test and the kernel hooks use.
func (c Context) defaultBuild(release string) buildArgs {
	sys := c.Loader.SysRoot
	if sys == "" {
		sys = "/sys"
	}
	return buildArgs{config: c.configPath(), kver: release, out: c.imagePath(release), busybox: c.Busybox, compress: "gzip", sysRoot: sys, devRoot: "/dev"}
}

func (c Context) build(args []string) error {
	fs := c.flags("build", "[-c CONFIG] [-o IMAGE] [--kver RELEASE] [flags]")
	b := buildFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if !c.flagSet(fs, "c") {
		b.config = c.configPath()
	}
	c.fill(b)
	return c.buildImage(*b)
}

// configImage works out the image b asks for, without building it: what
// ukdump build writes and load's staleness check compares.
func (c Context) configImage(b buildArgs) (initramfs.ConfigImage, error) {
	data, err := os.ReadFile(b.config)
	if err != nil {
		return initramfs.ConfigImage{}, err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return initramfs.ConfigImage{}, fmt.Errorf("%s: %w", b.config, err)
	}
	var mtime int64
	if s := c.getenv("SOURCE_DATE_EPOCH"); s != "" {
		if mtime, err = strconv.ParseInt(s, 10, 64); err != nil {
			return initramfs.ConfigImage{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
	}
	var nics []initramfs.NIC
	if b.hostonly {
		if nics, err = initramfs.HostNICs(b.sysRoot); err != nil {
			return initramfs.ConfigImage{}, fmt.Errorf("--hostonly: %w", err)
		}
	}
	ci, err := initramfs.ForConfig(cfg, data, initramfs.ConfigOpts{
		Busybox:       b.busybox,
		KernelVersion: b.kver,
		ModulesDir:    b.modDir,
		Compression:   initramfs.Compression(b.compress),
		MTime:         mtime,
		Modules:       b.modules,
		NICs:          nics,
		Resolve:       c.Resolve,
		Storage:       initramfs.Storage(b.generic),
		Host:          initramfs.HostOpts{SysRoot: b.sysRoot, DevRoot: b.devRoot},
		Version:       version.Version,
	})
	if err != nil {
		return initramfs.ConfigImage{}, fmt.Errorf("%s: %w", b.config, err)
	}
	return ci, nil
}

func (c Context) getenv(k string) string {
	if c.Getenv == nil {
		return os.Getenv(k)
	}
	return c.Getenv(k)
}

// buildImage builds the image b asks for and writes its record beside it.
func (c Context) buildImage(b buildArgs) error {
	ci, err := c.configImage(b)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	for _, w := range ci.Warnings {
		fmt.Fprintf(c.Stderr, "ukdump build: warning: %s\n", w)
	}
	for _, r := range ci.Resolved {
		fmt.Fprintf(c.Stdout, "ukdump build: target %d: no device: %s is on %s (%s, mounted on %s): device = %q, path = %q\n",
			r.Target, r.FS.Path, r.FS.Device, r.FS.FSType, r.FS.MountPoint, r.FS.Spec, r.FS.FSPath)
	}
	c.reportStorage(ci, b.generic)
	if b.hostonly {
		c.reportNICs(ci, b.sysRoot)
	}
	var img bytes.Buffer
	res, err := initramfs.Build(&img, ci.Opts)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Stderr, "ukdump build: warning: %s\n", w)
	}
	ci.Record.LargestModule = res.LargestModule
	rec, err := ci.Record.Marshal()
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if dir := filepath.Dir(b.out); b.out == c.imagePath(b.kver) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	if err := writeAtomic(b.out, img.Bytes()); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := writeAtomic(b.out+layout.RecordSuffix, rec); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	bb, _ := os.Stat(ci.Opts.Busybox)
	fmt.Fprintf(c.Stdout, "ukdump build: wrote %s: %s %s (%d bytes), %s unpacked; busybox %s (%s); kernel %s modules (%d): %s\n",
		b.out, collect.HumanBytes(res.Size), b.compress, res.Size, collect.HumanBytes(res.UncompressedSize),
		ci.Opts.Busybox, collect.HumanBytes(bb.Size()), b.kver, len(res.Modules), strings.Join(res.Modules, " "))
	if b.generic == genericFlag(initramfs.Generic) {
		c.reportGenericSize(ci, res)
	}
	return nil
}

// reportStorage prints the disk targets' modules and why each is there.
func (c Context) reportStorage(ci initramfs.ConfigImage, generic genericFlag) {
	if generic != "" {
		var names []string
		for _, m := range ci.Storage {
			names = append(names, m.Name)
		}
		if len(names) > 0 {
			fmt.Fprintf(c.Stdout, "ukdump build: --generic=%s: storage drivers and file systems for other machines: %s\n", generic, strings.Join(names, " "))
		}
		return
	}
	for _, m := range ci.Storage {
		name := m.Name
		if m.Builtin {
			name += " (built into the kernel)"
		}
		fmt.Fprintf(c.Stdout, "ukdump build: host-only: %s: %s\n", name, strings.Join(m.Reasons, "; "))
	}
}

// reportGenericSize prints what the generic set costs: the image built res
// against the same image without it.
func (c Context) reportGenericSize(ci initramfs.ConfigImage, res initramfs.Result) {
	keep := initramfs.DefaultModules(false, ci.Network) // the network's, wanted anyway
	o := ci.Opts
	o.OptionalModules = slices.DeleteFunc(slices.Clone(o.OptionalModules), func(m string) bool {
		return !slices.Contains(keep, m) && slices.ContainsFunc(ci.Storage, func(s initramfs.StorageModule) bool { return s.Name == m })
	})
	without, err := initramfs.Build(io.Discard, o)
	if err != nil {
		fmt.Fprintf(c.Stderr, "ukdump build: warning: --generic: cannot measure the image without the generic set: %v\n", err)
		return
	}
	fmt.Fprintf(c.Stdout, "ukdump build: --generic: the image is %s (%s unpacked) with the generic set, %s (%s unpacked) without it\n",
		collect.HumanBytes(res.Size), collect.HumanBytes(res.UncompressedSize), collect.HumanBytes(without.Size), collect.HumanBytes(without.UncompressedSize))
}

func (c Context) reportNICs(ci initramfs.ConfigImage, sysRoot string) {
	nics, _ := initramfs.HostNICs(sysRoot)
	switch {
	case !ci.Network:
		fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network target, so no network driver added\n")
	case len(nics) == 0:
		fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network interface with a driver module in %s\n", filepath.Join(sysRoot, "class/net"))
	default:
		var desc []string
		for _, n := range nics {
			desc = append(desc, n.Interface+" "+n.Module)
		}
		fmt.Fprintf(c.Stdout, "ukdump build: --hostonly: network drivers: %s\n", strings.Join(desc, ", "))
	}
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// prepareImage picks the image load loads and checks it against the kernel:
// without --initrd, the kernel release's image, built first when it is
// missing or stale (unless noRebuild); any image whose modules are another
// release's is refused unless force.
func (c Context) prepareImage(l *kexec.Loader, o *kexec.LoadOpts, noRebuild bool) error {
	kernel := o.Kernel
	if kernel == "" {
		k, err := l.DefaultKernel()
		if err != nil {
			return err
		}
		kernel = k
	}
	rel, relErr := kernelRelease(kernel)
	if o.Initrd == "" {
		if relErr != nil {
			return fmt.Errorf("%w (needed to find its image; pass --initrd)", relErr)
		}
		o.Initrd = c.imagePath(rel)
		if !noRebuild {
			b := c.defaultBuild(rel)
			why, err := c.staleness(b)
			if err != nil {
				return err
			}
			if why != "" {
				fmt.Fprintf(c.Stdout, "ukdump load: rebuilding %s: %s\n", o.Initrd, why)
				if err := c.buildImage(b); err != nil {
					return err
				}
			}
		}
	}
	rec, err := initramfs.ReadRecord(o.Initrd)
	if err == nil {
		o.Extra = rec.ExtraBytes() // S3 part buffers, module loading: the reservation must hold them too
		o.CPUs = rec.CPUs          // collect.cpus: nr_cpus=, and its memory
	}
	if relErr != nil {
		fmt.Fprintf(c.Stderr, "ukdump load: warning: cannot tell %s's release (%v): not checking that %s is its image\n", kernel, relErr, o.Initrd)
		return nil
	}
	switch {
	case rec.KernelRelease != "" && rec.KernelRelease != rel:
		// The fix is an image of rel at rel's own path, never o.Initrd
		// rewritten: that is the other kernel's image, which it still needs.
		msg := fmt.Sprintf("%s holds the modules of kernel %s, but the kernel to load (%s) is %s: its disk and network drivers would not load and no dump would be taken; load that kernel's own image: ukdump load --kernel %s (it builds %s), or ukdump build --kver %s",
			o.Initrd, rec.KernelRelease, kernel, rel, kernel, c.imagePath(rel), rel)
		if !o.Force {
			return fmt.Errorf("%s (or load it anyway with --force)", msg)
		}
		fmt.Fprintf(c.Stderr, "ukdump load: warning: %s; loading anyway (--force)\n", msg)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (build it: ukdump build --kver %s -o %s)", err, rel, o.Initrd)
	case err != nil:
		fmt.Fprintf(c.Stderr, "ukdump load: warning: %v: cannot check that it is %s's image\n", err, rel)
	}
	return nil
}

// staleness says why b's image must be (re)built, or "" when it is current.
func (c Context) staleness(b buildArgs) (string, error) {
	rec, err := initramfs.ReadRecord(b.out)
	if errors.Is(err, fs.ErrNotExist) {
		return "there is none for kernel " + b.kver, nil
	}
	// The record does not depend on the disk drivers: compare without
	// detecting them, so that a disk target missing at boot does not stop
	// load from loading its current image.
	b.generic = genericFlag(initramfs.GenericVirtio)
	ci, cerr := c.configImage(b)
	if cerr != nil {
		return "", fmt.Errorf("checking %s: %w", b.out, cerr)
	}
	if err != nil {
		return fmt.Sprintf("its record cannot be read (%v)", err), nil
	}
	if why := rec.Stale(ci.Record); len(why) > 0 {
		return strings.Join(why, "; "), nil
	}
	return "", nil
}

func kernelRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rel, err := kexec.KernelRelease(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return rel, nil
}
