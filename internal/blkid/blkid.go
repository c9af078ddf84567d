// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package blkid finds block devices by UUID=, LABEL=, PARTUUID= or path and
// identifies their filesystems.
//
// u-root's pkg/mount/block reads filesystem UUIDs but not labels and
// hard-codes /sys, so this is a small probe of its own over an injectable
// sysfs and /dev.
package blkid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/targetspec"
)

// ErrNotFound is returned when no block device matches a spec. Its message
// goes on to list the devices that were seen.
var ErrNotFound = errors.New("blkid: no block device")

// Debug logs best-effort failures (e.g. an unreadable partition table);
// set it to log.Printf to see them.
var Debug = func(string, ...any) {}

// Device is a block device and what Probe found on it.
type Device struct {
	Name     string // kernel name, e.g. "vdb1"
	Path     string // DevRoot + "/" + Name
	FSType   string // "ext4", "ext3", "ext2", "xfs", "vfat", "btrfs" or "" when unknown
	UUID     string // filesystem UUID, lower-case canonical form (vfat: xxxx-xxxx)
	Label    string // filesystem label
	PartUUID string // GPT partition GUID (lower-case) or MBR "xxxxxxxx-NN"; "" for whole disks
}

// String describes d the way Find's errors list it, e.g.
// `vda1 ext4 LABEL="root" UUID="…" PARTUUID="…"` or `vdb no filesystem`.
func (d Device) String() string {
	s := d.Name
	if d.FSType == "" {
		s += " no filesystem"
	} else {
		s += " " + d.FSType
	}
	for _, kv := range [][2]string{{"LABEL", d.Label}, {"UUID", d.UUID}, {"PARTUUID", d.PartUUID}} {
		if kv[1] != "" {
			s += fmt.Sprintf(" %s=%q", kv[0], kv[1])
		}
	}
	return s
}

// Finder lists and probes block devices. The zero value uses /sys and /dev.
type Finder struct {
	SysRoot string // sysfs mount point, default "/sys"; devices are listed from SysRoot/class/block
	DevRoot string // device nodes, default "/dev"
}

func (f Finder) roots() (sys, dev string) {
	sys, dev = f.SysRoot, f.DevRoot
	if sys == "" {
		sys = "/sys"
	}
	if dev == "" {
		dev = "/dev"
	}
	return sys, dev
}

// List returns all block devices in SysRoot/class/block, probed, sorted by
// name. Devices of size 0 (empty loop devices, CD drives without a disc) and
// devices that cannot be opened or read (ENOMEDIUM, no node in DevRoot yet)
// are left out.
func (f Finder) List() ([]Device, error) {
	devs, _, err := f.list()
	return devs, err
}

// list is List, also returning one line per device it left out and why.
func (f Finder) list() (devs []Device, skipped []string, err error) {
	sys, dev := f.roots()
	classBlock := filepath.Join(sys, "class", "block")
	ents, err := os.ReadDir(classBlock)
	if err != nil {
		return nil, nil, fmt.Errorf("blkid: listing block devices: %w (is sysfs mounted on %s?)", err, sys)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		if b, err := os.ReadFile(filepath.Join(classBlock, name, "size")); err == nil && strings.TrimSpace(string(b)) == "0" {
			skipped = append(skipped, name+" (empty)")
			continue
		}
		d := Device{Name: name, Path: filepath.Join(dev, name)}
		file, err := os.Open(d.Path)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (cannot open: %v)", name, unwrapPath(err)))
			continue
		}
		d.FSType, d.UUID, d.Label, err = Probe(file)
		file.Close()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (cannot read: %v)", name, err))
			continue
		}
		if d.PartUUID, err = f.partUUID(classBlock, dev, name, names); err != nil {
			Debug("blkid: PARTUUID of %s: %v", name, err)
		}
		devs = append(devs, d)
	}
	return devs, skipped, nil
}

// unwrapPath drops the path from a *os.PathError, which the caller already names.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}

// partUUID returns the PARTUUID of name if it is a partition, "" otherwise.
// The parent disk is the entry of SysRoot/class/block that has a
// subdirectory called name, which holds in real sysfs (the class entries are
// symlinks to .../block/vdb and .../block/vdb/vdb1) and in a plain tree.
func (f Finder) partUUID(classBlock, dev, name string, names []string) (string, error) {
	b, err := os.ReadFile(filepath.Join(classBlock, name, "partition"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil // a whole disk
	} else if err != nil {
		return "", err
	}
	partn, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("blkid: partition number in %s: %w", filepath.Join(classBlock, name, "partition"), err)
	}
	for _, disk := range names {
		if disk == name {
			continue
		}
		if _, err := os.Stat(filepath.Join(classBlock, disk, name)); err != nil {
			continue
		}
		file, err := os.Open(filepath.Join(dev, disk))
		if err != nil {
			return "", err
		}
		defer file.Close()
		u, err := partUUID(file, partn)
		if err != nil {
			return "", fmt.Errorf("%w on %s", err, file.Name())
		}
		return u, nil
	}
	return "", fmt.Errorf("blkid: no disk in %s has a %s subdirectory", classBlock, name)
}

// Find returns the block device that spec (see targetspec.ParseDevice)
// names. UUID and PARTUUID compare case-insensitively, LABEL exactly, and a
// path is taken relative to DevRoot ("/dev/vdb" is DevRoot+"/vdb"; symlinks
// are followed). It returns an error wrapping ErrNotFound that lists the
// devices seen when none matches, and an error when more than one does.
func (f Finder) Find(spec string) (Device, error) {
	d, _, err := f.find(spec)
	return d, err
}

// find is Find, also returning the devices seen for Wait's message.
func (f Finder) find(spec string) (Device, string, error) {
	want, err := targetspec.ParseDevice(spec)
	if err != nil {
		return Device{}, "", fmt.Errorf("blkid: %w", err)
	}
	devs, skipped, err := f.list()
	if err != nil {
		return Device{}, "", err
	}
	match := func(d Device) bool {
		switch want.Kind {
		case targetspec.KindUUID:
			return strings.EqualFold(d.UUID, want.Value)
		case targetspec.KindPartUUID:
			return strings.EqualFold(d.PartUUID, want.Value)
		case targetspec.KindLabel:
			return d.Label == want.Value
		}
		return false
	}
	if want.Kind == targetspec.KindPath {
		_, dev := f.roots()
		p := filepath.Join(dev, strings.TrimPrefix(want.Value, "/dev/"))
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		match = func(d Device) bool {
			r, err := filepath.EvalSymlinks(d.Path)
			return d.Path == p || err == nil && r == p
		}
	}
	var found []Device
	var seen []string
	for _, d := range devs {
		if match(d) {
			found = append(found, d)
		}
		seen = append(seen, d.String())
	}
	switch len(found) {
	case 1:
		return found[0], "", nil
	case 0:
		s := strings.Join(append(seen, skipped...), ", ")
		if s == "" {
			s = "none"
		}
		// want.String(), not want: a Device in an interface costs the
		// capture busybox its equality and method wrappers.
		return Device{}, s, fmt.Errorf("%w with %s (seen: %s)", ErrNotFound, want.String(), s)
	}
	names := make([]string, len(found))
	for i, d := range found {
		names[i] = d.Name
	}
	return Device{}, "", fmt.Errorf("blkid: %s matches %d block devices (%s); refusing to guess, use PARTUUID= or a /dev/… path",
		want.String(), len(found), strings.Join(names, ", "))
}

// Wait calls Find every poll (100ms if poll <= 0) until the device appears
// or ctx is done. Errors other than ErrNotFound (a bad spec, no sysfs, several
// matches) return at once. On timeout the error wraps ErrNotFound and
// ctx.Err(), and says how long it waited and what was seen.
func (f Finder) Wait(ctx context.Context, spec string, poll time.Duration) (Device, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	start := time.Now()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		d, seen, err := f.find(spec)
		if !errors.Is(err, ErrNotFound) {
			return d, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			want, _ := targetspec.ParseDevice(spec) // find parsed it already
			return Device{}, fmt.Errorf("%w with %s after waiting %v (seen: %s): %w; is the driver module for the disk in the image? (add it with --module)",
				ErrNotFound, want.String(), time.Since(start).Round(time.Millisecond), seen, ctx.Err())
		}
	}
}
