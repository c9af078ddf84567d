//go:build !ukdump_capture

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/initramfs"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/config"
)

func (c Context) build(args []string) error {
	fs := c.flags("build", "-c CONFIG -o IMAGE [flags]")
	cfgPath := fs.String("c", "", "config file (TOML); required")
	out := fs.String("o", "", "image to write; required")
	busybox := fs.String("busybox", "", "capture busybox binary (default: bb beside ukdump, else /usr/local/lib/ukdump/bb)")
	kver := fs.String("kver", "", "capture kernel release whose modules go in (default: the running kernel's)")
	modDir := fs.String("modules-dir", "", "modules directory (default /lib/modules/KVER)")
	compress := fs.String("compress", "gzip", "image compression: gzip, zstd, xz or none")
	var modules listFlag
	fs.Var(&modules, "module", "extra kernel module to include with its dependencies (repeatable)")
	hostonly := fs.Bool("hostonly", false, "also include the driver modules of this machine's network interfaces (for network targets)")
	sysRoot := fs.String("sysfs", "/sys", "sysfs to read this machine's network interfaces from (with --hostonly)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: build needs -c CONFIG and -o IMAGE", ErrUsage)
	}
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return fmt.Errorf("build: %s: %w", *cfgPath, err)
	}
	if *kver == "" {
		*kver = Release()
	}
	var mtime int64
	if s := c.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if mtime, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("build: SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
	}
	needDisk, needNet := false, false
	extra := append([]string(nil), modules...)
	for _, t := range cfg.Targets {
		needNet = needNet || t.IsNetwork()
		needDisk = needDisk || !t.IsNetwork()
		if t.FSType != "" {
			extra = append(extra, t.FSType)
		}
	}
	if *busybox == "" {
		*busybox = defaultBusybox(needNet)
	}
	files, err := sshFiles(cfg, func(f string, a ...any) { fmt.Fprintf(c.Stderr, "ukdump build: "+f+"\n", a...) })
	if err != nil {
		return fmt.Errorf("build: %s: %w", *cfgPath, err)
	}
	if len(files) > 0 {
		// The image's config points at the keys as they are in the image.
		if data, err = cfg.Marshal(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	optional := initramfs.DefaultModules(needDisk, needNet)
	if *hostonly {
		nics, err := nicModules(*sysRoot)
		if err != nil {
			return fmt.Errorf("build: --hostonly: %w", err)
		}
		switch {
		case !needNet:
			fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network target, so no network driver added\n")
		case len(nics) == 0:
			fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network interface with a driver module in %s\n", filepath.Join(*sysRoot, "class/net"))
		default:
			var desc []string
			for _, n := range nics {
				desc = append(desc, n.iface+" "+n.module)
				if !slices.Contains(optional, n.module) {
					optional = append(optional, n.module)
				}
			}
			fmt.Fprintf(c.Stdout, "ukdump build: --hostonly: network drivers: %s\n", strings.Join(desc, ", "))
		}
	}
	var img bytes.Buffer
	res, err := initramfs.Build(&img, initramfs.Opts{
		Files:           files,
		Busybox:         *busybox,
		ConfigTOML:      data,
		KernelVersion:   *kver,
		ModulesDir:      *modDir,
		Modules:         extra,
		OptionalModules: optional,
		Compression:     initramfs.Compression(*compress),
		MTime:           mtime,
	})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Stderr, "ukdump build: warning: %s\n", w)
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, img.Bytes(), 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("build: %w", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("build: %w", err)
	}
	bb, _ := os.Stat(*busybox)
	fmt.Fprintf(c.Stdout, "ukdump build: wrote %s: %s %s (%d bytes), %s unpacked; busybox %s (%s); kernel %s modules (%d): %s\n",
		*out, collect.HumanBytes(res.Size), *compress, res.Size, collect.HumanBytes(res.UncompressedSize),
		*busybox, collect.HumanBytes(bb.Size()), *kver, len(res.Modules), strings.Join(res.Modules, " "))
	return nil
}

// nic is a network interface and the module of its driver.
type nic struct{ iface, module string }

// nicModules lists the driver modules of the network interfaces in
// sysRoot/class/net, by interface name: the base name of each
// device/driver/module link. Interfaces without a device (lo, bridges,
// tunnels and other virtual ones) and drivers built into the kernel (no
// module link) are skipped.
func nicModules(sysRoot string) ([]nic, error) {
	dir := filepath.Join(sysRoot, "class", "net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var nics []nic
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "device")); err != nil {
			continue // virtual
		}
		link, err := os.Readlink(filepath.Join(dir, e.Name(), "device", "driver", "module"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // built in, or no driver bound
		}
		if err != nil {
			return nil, fmt.Errorf("driver module of %s: %w", e.Name(), err)
		}
		nics = append(nics, nic{iface: e.Name(), module: strings.ReplaceAll(filepath.Base(link), "-", "_")})
	}
	return nics, nil
}
