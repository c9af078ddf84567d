//go:build !ukdump_capture

package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
	var nics []initramfs.NIC
	if *hostonly {
		if nics, err = initramfs.HostNICs(*sysRoot); err != nil {
			return fmt.Errorf("build: --hostonly: %w", err)
		}
	}
	ci, err := initramfs.ForConfig(cfg, data, initramfs.ConfigOpts{
		Busybox:       *busybox,
		KernelVersion: *kver,
		ModulesDir:    *modDir,
		Compression:   initramfs.Compression(*compress),
		MTime:         mtime,
		Modules:       modules,
		NICs:          nics,
	})
	if err != nil {
		return fmt.Errorf("build: %s: %w", *cfgPath, err)
	}
	for _, w := range ci.Warnings {
		fmt.Fprintf(c.Stderr, "ukdump build: warning: %s\n", w)
	}
	if *hostonly {
		switch {
		case !ci.Network:
			fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network target, so no network driver added\n")
		case len(nics) == 0:
			fmt.Fprintf(c.Stderr, "ukdump build: warning: --hostonly: no network interface with a driver module in %s\n", filepath.Join(*sysRoot, "class/net"))
		default:
			var desc []string
			for _, n := range nics {
				desc = append(desc, n.Interface+" "+n.Module)
			}
			fmt.Fprintf(c.Stdout, "ukdump build: --hostonly: network drivers: %s\n", strings.Join(desc, ", "))
		}
	}
	var img bytes.Buffer
	res, err := initramfs.Build(&img, ci.Opts)
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
	bb, _ := os.Stat(ci.Opts.Busybox)
	fmt.Fprintf(c.Stdout, "ukdump build: wrote %s: %s %s (%d bytes), %s unpacked; busybox %s (%s); kernel %s modules (%d): %s\n",
		*out, collect.HumanBytes(res.Size), *compress, res.Size, collect.HumanBytes(res.UncompressedSize),
		ci.Opts.Busybox, collect.HumanBytes(bb.Size()), *kver, len(res.Modules), strings.Join(res.Modules, " "))
	return nil
}
