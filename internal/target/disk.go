// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/dm"
	"github.com/ukdump/ukdump/internal/lvm"
)

// MountFunc mounts a block device; it is unix.Mount in the capture kernel.
type MountFunc func(source, target, fstype string, flags uintptr, data string) error

// UnmountFunc unmounts; it is unix.Unmount in the capture kernel.
type UnmountFunc func(target string, flags int) error

// Disk is a local block device target.
type Disk struct {
	// Spec selects the device: UUID=…, LABEL=…, PARTUUID=… or /dev/….
	Spec string
	// Path is the directory on the file system where dumps go ("/" is its root).
	Path string
	// FSType overrides the detected file system type.
	FSType string
	// Options is mount(2) data.
	Options string
	// Wait bounds the wait for the device to appear.
	Wait time.Duration
	// MountWait bounds the mount (DefaultMountWait if zero): a disk that
	// stops answering (an NVMe controller timing out in the capture
	// kernel, a dying disk) holds mount(2) for minutes of driver resets,
	// and the later targets must still get their turn.
	MountWait time.Duration
	// MountPoint is where the device is mounted (created if needed).
	MountPoint string
	Finder     blkid.Finder
	// LVM, if set, makes the device of an LVM logical volume that Spec
	// names (/dev/mapper/VG-LV, /dev/VG/LV, or the UUID= or LABEL= of the
	// file system in it) when no block device has it; lvm.Activator's
	// Activate is one.
	LVM     func(spec string) (dev string, p *lvm.Plan, err error)
	Mount   MountFunc
	Unmount UnmountFunc
	Logf    func(format string, args ...any)
}

func (d *Disk) String() string { return fmt.Sprintf("disk %s path %s", d.Spec, d.Path) }

// Open waits for the device, mounts it and makes Path.
func (d *Disk) Open(ctx context.Context) (Dir, error) {
	wctx, cancel := context.WithTimeout(ctx, d.Wait)
	defer cancel()
	start := time.Now()
	dev, err := d.find(wctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	fstype := d.FSType
	if fstype == "" {
		fstype = dev.FSType
	}
	if fstype == "" {
		return nil, fmt.Errorf("%s: %s has no file system we recognise (set fstype in the target, or make one: mkfs.ext4 -L crashdump %s)", d, dev.Path, dev.Path)
	}
	d.logf("found %s (%s, %s) after %s", dev.Path, fstype, d.Spec, time.Since(start).Round(time.Millisecond))
	if err := os.MkdirAll(d.MountPoint, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	if err := d.mount(ctx, dev.Path, fstype); err != nil {
		return nil, fmt.Errorf("%s: mount %s on %s (type %s, options %q): %w (%s)", d, dev.Path, d.MountPoint, fstype, d.Options, err, mountHint(err, fstype))
	}
	root := filepath.Join(d.MountPoint, d.Path)
	if err := os.MkdirAll(root, 0o755); err != nil {
		d.unmount()
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return &localDir{root: root, name: fmt.Sprintf("%s:%s", dev.Path, d.Path), close: d.unmount}, nil
}

// DefaultMountWait is how long a mount may take: log recovery of the
// largest XFS or ext4 journal on a slow disk takes well under a minute.
const DefaultMountWait = 5 * time.Minute

// errMountHung: mount(2) did not return in time.
var errMountHung = errors.New("mount did not return")

// mount mounts dev on d.MountPoint, giving up after d.MountWait or when
// ctx ends. A mount given up on stays in the kernel (it cannot be
// interrupted); the capture goes on without it.
func (d *Disk) mount(ctx context.Context, dev, fstype string) error {
	wait := d.MountWait
	if wait <= 0 {
		wait = DefaultMountWait
	}
	done := make(chan error, 1)
	go func() { done <- d.Mount(dev, d.MountPoint, fstype, 0, d.Options) }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w after %v", errMountHung, wait)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errMountHung, context.Cause(ctx))
	}
}

// mountHint says what to look at after a failed mount: the kernel says
// ENODEV for a file system type it does not know, EIO when the disk failed
// the reads (a driver's timeouts, a dying disk, a journal it cannot replay).
func mountHint(err error, fstype string) string {
	switch {
	case errors.Is(err, errMountHung):
		return "the disk is not answering: the capture kernel's messages above say why (e.g. the disk driver's timeouts); any later target is tried"
	case errors.Is(err, syscall.ENODEV):
		return fmt.Sprintf("is the %s module in the image?", fstype)
	case errors.Is(err, syscall.EIO):
		return "the disk failed I/O: the capture kernel's messages above say why (e.g. the disk driver's timeouts)"
	case errors.Is(err, syscall.EINVAL):
		return fmt.Sprintf("is it a %s file system the capture kernel's %s can mount? see its messages above", fstype, fstype)
	}
	return fmt.Sprintf("is the %s module in the image? the capture kernel's messages above say more", fstype)
}

// find polls for the device, every 50ms until ctx is done: a block device
// with Spec, else an LVM logical volume with it, whose device it makes.
// Errors other than "not there yet" return at once.
func (d *Disk) find(ctx context.Context) (blkid.Device, error) {
	start := time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		dev, err := d.Finder.Find(d.Spec)
		if !errors.Is(err, blkid.ErrNotFound) {
			return dev, err
		}
		var lvErr error
		if d.LVM != nil && lvm.MayName(d.Spec) {
			var path string
			var p *lvm.Plan
			path, p, lvErr = d.LVM(d.Spec)
			if lvErr == nil {
				return d.probeLV(path, p)
			}
			if !lvm.Waiting(lvErr) {
				return blkid.Device{}, lvErr
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			err = fmt.Errorf("%w after waiting %v: %w; is the driver module for the disk in the image? (add it with --module)",
				err, time.Since(start).Round(time.Millisecond), ctx.Err())
			if lvErr != nil {
				err = fmt.Errorf("%w; LVM: %w", err, lvErr)
			}
			return blkid.Device{}, err
		}
	}
}

// probeLV describes the device made for the LV of p at path.
func (d *Disk) probeLV(path string, p *lvm.Plan) (blkid.Device, error) {
	kind := "linear"
	if slices.ContainsFunc(p.Targets, func(t dm.Target) bool { return t.Type != "linear" }) {
		kind = "striped"
	}
	d.logf("LVM: %s/%s (%s, %d segments, %d sectors) is %s", p.VG.Name, p.LV.Name, kind, len(p.Targets), p.Sectors, path)
	f, err := os.Open(path)
	if err != nil {
		return blkid.Device{}, fmt.Errorf("LV %s/%s: %w", p.VG.Name, p.LV.Name, err)
	}
	defer f.Close()
	dev := blkid.Device{Name: filepath.Base(path), Path: path}
	if dev.FSType, dev.UUID, dev.Label, err = blkid.Probe(f); err != nil {
		return blkid.Device{}, fmt.Errorf("LV %s/%s: %s: %w", p.VG.Name, p.LV.Name, path, err)
	}
	return dev, nil
}

func (d *Disk) unmount() error {
	if err := d.Unmount(d.MountPoint, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", d.MountPoint, err)
	}
	return nil
}

func (d *Disk) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// LocalDir is a Dir on an already-mounted file system (tests and host use).
func LocalDir(root string) Dir {
	return &localDir{root: root, name: root, close: func() error { return nil }}
}

// IsLocal reports whether d is on this machine's own disks (a Disk target,
// or LocalDir): ukdump status at the next boot sees the dumps there.
func IsLocal(d Dir) bool {
	_, ok := d.(*localDir)
	return ok
}

type localDir struct {
	root, name string
	close      func() error
}

func (l *localDir) String() string { return l.name }

func (l *localDir) path(name string) (string, error) {
	if name != "" && (filepath.IsAbs(name) || strings.Contains(name, "..")) {
		return "", fmt.Errorf("bad name %q", name)
	}
	return filepath.Join(l.root, name), nil
}

func (l *localDir) Mkdir(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	return os.Chmod(p, 0o700) // umask may have narrowed it; be exact
}

func (l *localDir) Create(name string) (File, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) // RDWR: the kdump writer reads back for the sha256
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil { // exact, whatever the umask or an old file's mode
		f.Close()
		return nil, err
	}
	return newStreamFile(f), nil
}

func (l *localDir) Rename(oldname, newname string) error {
	op, err := l.path(oldname)
	if err != nil {
		return err
	}
	np, err := l.path(newname)
	if err != nil {
		return err
	}
	return os.Rename(op, np)
}

func (l *localDir) SyncDir(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: p, Err: err}
	}
	return nil
}

func (l *localDir) List() ([]string, error) {
	ents, err := os.ReadDir(l.root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (l *localDir) RemoveAll(name string) error {
	p, err := l.path(name)
	if err != nil || name == "" {
		return errors.Join(err, errors.New("refusing to remove the target's top directory"))
	}
	return os.RemoveAll(p)
}

func (l *localDir) Close() error { return l.close() }
