// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package initramfs assembles the ukdump capture initramfs: busybox, links,
// init, config, device nodes and kernel modules, as a reproducible newc cpio.
// ForConfig decides what a config's image holds (ukdump build only parses
// flags and prints): the busybox, the modules and the SSH files.
package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/ukdump/ukdump/internal/layout"
)

// Compression is the compression of the cpio archive.
type Compression string

// Compressions the kernel can unpack an initramfs from (CONFIG_RD_*).
const (
	Gzip Compression = "gzip" // deflate at best compression; the default
	Zstd Compression = "zstd" // zstd at its best level, 8 MiB window, like the kernel's own zstd -19
	XZ   Compression = "xz"   // CRC32 check and 1 MiB dictionary, as the kernel's xz decoder wants
	None Compression = "none" // the plain cpio
)

// File is an extra file for the image, such as an SSH key.
type File struct {
	// Src is a host path to read; ignored if Data is not nil.
	Src string
	// Data is the file's contents.
	Data []byte
	// Dst is the path in the image, e.g. "etc/ukdump/target0/id".
	// Missing parent directories are created with mode 0755.
	Dst string
	// Mode holds the permission bits; 0 means 0600.
	Mode os.FileMode
}

// Opts describes a capture image. Only Busybox is required.
type Opts struct {
	// Busybox is the path of the prebuilt gobusybox binary, written to
	// layout.Busybox.
	Busybox string
	// Commands are the busybox's commands, linked as bbin/<name> -> bb. The
	// binary cannot tell which it has, so the caller says. "capture" is
	// always linked, as init points at it. Default: layout.BusyboxCommands().
	Commands []string
	// ConfigTOML is written to layout.ConfigPath with mode 0600.
	ConfigTOML []byte
	// Files are extra files.
	Files []File
	// KernelVersion is the capture kernel's version, whose modules are
	// added. Required if any modules are.
	KernelVersion string
	// ModulesDir is where the modules are read from.
	// Default: /lib/modules/<KernelVersion>.
	ModulesDir string
	// Modules are module names or aliases to add with their dependencies;
	// one missing from the kernel is an error.
	Modules []string
	// OptionalModules are added like Modules, but one missing from the
	// kernel is skipped with a warning in Result.Warnings. Meant for
	// DefaultModules.
	OptionalModules []string
	// Compression defaults to Gzip.
	Compression Compression
	// MTime is the modification time of every record, in seconds since
	// the epoch (the cmd layer passes SOURCE_DATE_EPOCH). Default: 0.
	MTime int64
}

// Result describes a built image.
type Result struct {
	// Size is the number of bytes written; UncompressedSize that of the cpio.
	Size, UncompressedSize int64
	// Modules are the names of the modules in the image, in load order.
	Modules []string
	// LargestModule is the size of the largest module as the kernel loads
	// it (decompressed, for a .ko.xz, .ko.zst or .ko.gz): finit_module
	// holds that and the module's own copy at once (kexec.ModuleBytes).
	LargestModule int64
	// Warnings list optional modules skipped because the kernel lacks them.
	Warnings []string
}

// Build writes the capture image described by o to w, in the layout of
// package layout. It:
//   - writes the busybox as bbin/bb, links bbin/<command> -> bb, bin -> bbin
//     and init -> bbin/capture (gobusybox dispatches on the last symlink);
//   - creates dev, proc, sys, tmp, etc, etc/ukdump (0700), mnt, var and
//     lib/modules/<kver> (0755), and the device nodes dev/console,
//     dev/null, dev/kmsg and dev/tty;
//   - writes ConfigTOML and Files;
//   - resolves Modules and OptionalModules with ResolveModules semantics,
//     copies each module to lib/modules/<kver>/<path in modules.dep> and
//     lists those paths (relative to the image root) in load order in
//     layout.ModulesLoadPath;
//   - writes the records sorted by name, with mtime MTime, uid and gid 0
//     and inode numbers by position, then compresses them. The same inputs
//     give the same bytes.
func Build(w io.Writer, o Opts) (Result, error) {
	var res Result
	if o.Busybox == "" {
		return res, errors.New("initramfs: no busybox binary given")
	}
	if o.MTime < 0 || o.MTime > math.MaxUint32 {
		return res, fmt.Errorf("initramfs: mtime %d does not fit a newc header", o.MTime)
	}
	if strings.Contains(o.KernelVersion, "/") {
		return res, fmt.Errorf("initramfs: invalid kernel version %q", o.KernelVersion)
	}
	if o.Compression == "" {
		o.Compression = Gzip
	}
	if !slices.Contains([]Compression{Gzip, Zstd, XZ, None}, o.Compression) {
		return res, fmt.Errorf("initramfs: unknown compression %q (want gzip, zstd, xz or none)", o.Compression)
	}
	if len(o.Commands) == 0 {
		o.Commands = layout.BusyboxCommands()
	}

	img := image{}
	for _, d := range []string{layout.BinDir, "dev", "proc", "sys", "tmp", "etc", layout.MountDir, "var", "lib", layout.ModulesDir} {
		img.add(cpio.Directory(d, 0o755))
	}
	img.add(cpio.Directory(layout.ConfigDir, 0o700))
	img.add(cpio.CharDev("dev/console", 0o600, 5, 1))
	img.add(cpio.CharDev("dev/tty", 0o666, 5, 0))
	img.add(cpio.CharDev("dev/null", 0o666, 1, 3))
	img.add(cpio.CharDev(layout.Kmsg, 0o644, 1, 11))
	img.add(cpio.Symlink("bin", layout.BinDir))
	img.add(cpio.Symlink(layout.Init, layout.InitTarget))

	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		return res, fmt.Errorf("initramfs: reading busybox: %w", err)
	}
	img.add(file(layout.Busybox, bb, 0o755))
	for _, c := range append([]string{path.Base(layout.InitTarget)}, o.Commands...) {
		if c == "" || c == path.Base(layout.Busybox) || strings.ContainsAny(c, "/") {
			return res, fmt.Errorf("initramfs: invalid busybox command name %q", c)
		}
		link := path.Join(layout.BinDir, c)
		if _, ok := img[link]; !ok {
			img.add(cpio.Symlink(link, path.Base(layout.Busybox)))
		}
	}
	img.add(file(layout.ConfigPath, o.ConfigTOML, 0o600))

	mods, warnings, err := modules(o)
	if err != nil {
		return res, err
	}
	res.Warnings = warnings
	kdir := path.Join(layout.ModulesDir, o.KernelVersion)
	img.add(cpio.Directory(kdir, 0o755))
	var load strings.Builder
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(modulesDir(o), m.Path))
		if err != nil {
			return res, fmt.Errorf("initramfs: reading module %s: %w", m.Name, err)
		}
		img.add(file(path.Join(kdir, m.Path), data, 0o644))
		load.WriteString(path.Join(kdir, m.Path) + "\n")
		res.Modules = append(res.Modules, m.Name)
		n, err := loadedSize(m.Path, data)
		if err != nil {
			// Not ours to judge: the capture kernel says whether it
			// loads. The size check counts the file as it is.
			n = int64(len(data))
		}
		res.LargestModule = max(res.LargestModule, n)
	}
	img.add(file(layout.ModulesLoadPath, []byte(load.String()), 0o644))

	for _, f := range o.Files {
		dst := cpio.Normalize(f.Dst)
		if dst == "." || dst == ".." || strings.HasPrefix(dst, "../") {
			return res, fmt.Errorf("initramfs: invalid destination %q for %q", f.Dst, f.Src)
		}
		data := f.Data
		if data == nil {
			if data, err = os.ReadFile(f.Src); err != nil {
				return res, fmt.Errorf("initramfs: reading extra file: %w", err)
			}
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o600
		}
		if _, ok := img[dst]; ok {
			return res, fmt.Errorf("initramfs: extra file %s is already in the image", dst)
		}
		img.add(file(dst, data, uint64(mode)))
	}

	cw := &countWriter{w: w}
	zw, err := compressor(cw, o.Compression)
	if err != nil {
		return res, err
	}
	uw := &countWriter{w: zw}
	if err := img.write(uw, uint64(o.MTime)); err != nil {
		zw.Close() // only to free the encoder: the write error is the one to report
		return res, err
	}
	if err := zw.Close(); err != nil {
		return res, fmt.Errorf("initramfs: closing %s compressor: %w", o.Compression, err)
	}
	res.Size, res.UncompressedSize = cw.n, uw.n
	return res, nil
}

// modules resolves o's modules, returning the optional ones the kernel lacks
// as warnings.
func modules(o Opts) ([]Module, []string, error) {
	if len(o.Modules)+len(o.OptionalModules) == 0 {
		return nil, nil, nil
	}
	if o.KernelVersion == "" {
		return nil, nil, errors.New("initramfs: modules requested but no kernel version given")
	}
	idx, err := loadIndex(modulesDir(o), o.KernelVersion)
	if err != nil {
		return nil, nil, err
	}
	names := slices.Clone(o.Modules)
	var warnings []string
	for _, n := range o.OptionalModules {
		if idx.has(n) {
			names = append(names, n)
		} else {
			warnings = append(warnings, fmt.Sprintf("module %q not found in %s (kernel %s), skipped", n, filepath.Join(idx.dir, "modules.dep"), o.KernelVersion))
		}
	}
	mods, err := idx.resolve(names)
	return mods, warnings, err
}

func modulesDir(o Opts) string {
	if o.ModulesDir != "" {
		return o.ModulesDir
	}
	return filepath.Join("/lib/modules", o.KernelVersion)
}

func file(name string, data []byte, perm uint64) cpio.Record {
	return cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm})
}

// image maps normalised record names to records.
type image map[string]cpio.Record

func (img image) add(r cpio.Record) { img[r.Name] = r }

// write writes img as newc to w: parents are created as 0755 directories,
// records are sorted by name (so parents come first) and given mtime,
// uid/gid 0 and inode numbers in that order.
func (img image) write(w io.Writer, mtime uint64) error {
	for name := range img {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			r, ok := img[d]
			if !ok {
				img.add(cpio.Directory(d, 0o755))
			} else if r.Mode&cpio.S_IFMT != cpio.S_IFDIR {
				return fmt.Errorf("initramfs: %s: parent %s is not a directory", name, d)
			}
		}
	}
	names := slices.Sorted(maps.Keys(img))
	rw := cpio.Newc.Writer(w)
	for i, n := range names {
		r := img[n]
		r.Ino, r.MTime, r.UID, r.GID, r.NLink = uint64(i+1), mtime, 0, 0, 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := rw.WriteRecord(r); err != nil {
			return fmt.Errorf("initramfs: writing cpio record %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("initramfs: writing cpio trailer: %w", err)
	}
	return nil
}

// compressor returns a deterministic compressing writer for c.
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		// A zero Header has no name and mtime 0.
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	case XZ:
		return xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 1 << 20}.NewWriter(w)
	case None:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("initramfs: unknown compression %q", c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// loadedSize is the size of the module file data (at name) once the kernel
// has decompressed it.
func loadedSize(name string, data []byte) (int64, error) {
	var r io.Reader
	var err error
	switch {
	case strings.HasSuffix(name, ".ko.xz"):
		r, err = xz.NewReader(bytes.NewReader(data))
	case strings.HasSuffix(name, ".ko.zst"):
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(data)); err == nil {
			defer d.Close()
			r = d
		}
	case strings.HasSuffix(name, ".ko.gz"):
		r, err = gzip.NewReader(bytes.NewReader(data))
	default:
		return int64(len(data)), nil
	}
	if err != nil {
		return 0, fmt.Errorf("decompressing %s: %w", path.Base(name), err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return 0, fmt.Errorf("decompressing %s: %w", path.Base(name), err)
	}
	return n, nil
}
