//go:build !ukdump_capture

package cli

import (
	"bytes"
	"fmt"
	"os"
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
	if *busybox == "" {
		*busybox = defaultBusybox()
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
	var img bytes.Buffer
	res, err := initramfs.Build(&img, initramfs.Opts{
		Files:           files,
		Busybox:         *busybox,
		ConfigTOML:      data,
		KernelVersion:   *kver,
		ModulesDir:      *modDir,
		Modules:         extra,
		OptionalModules: initramfs.DefaultModules(needDisk, needNet),
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
	fmt.Fprintf(c.Stdout, "ukdump build: wrote %s: %s %s (%d bytes), %s unpacked; busybox %s; kernel %s modules (%d): %s\n",
		*out, collect.HumanBytes(res.Size), *compress, res.Size, collect.HumanBytes(res.UncompressedSize),
		collect.HumanBytes(bb.Size()), *kver, len(res.Modules), strings.Join(res.Modules, " "))
	return nil
}
