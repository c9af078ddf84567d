// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/internal/dm"
)

// Activator makes the device-mapper device of the logical volume a disk
// target names, in the capture environment, where nothing else (no udev,
// no lvm2) does. It reads LVM metadata and never writes it.
type Activator struct {
	// SysRoot is where sysfs is mounted ("" is /sys); block devices are
	// listed from SysRoot/class/block.
	SysRoot string
	// DevRoot holds the device nodes ("" is /dev).
	DevRoot string
	// Control makes the device; its zero value is the kernel's
	// /dev/mapper/control with nodes in /dev/mapper.
	Control dm.Control
	// Probe identifies file systems, for UUID= and LABEL= specs.
	Probe Prober
	// Logf, if set, gets the problems Scan found (a damaged label...).
	Logf func(format string, args ...any)
}

// Activate makes the device of the LV that spec names (see Find) unless it
// is there already, and returns its node. Its errors wrap ErrNotFound
// when no LV matches (yet: its PVs may not have appeared), ErrMissingPV
// when a PV the LV needs is absent, and ErrUnsupported for an LV that is
// not linear or striped; each names the LV.
func (a Activator) Activate(spec string) (dev string, p *Plan, err error) {
	devs, closeAll, err := a.devices()
	if err != nil {
		return "", nil, err
	}
	defer closeAll()
	vgs, problems := Scan(devs)
	for _, err := range problems {
		if a.Logf != nil {
			a.Logf("lvm: %v", err)
		}
	}
	if p, err = Find(vgs, spec, a.Probe); err != nil {
		return "", nil, err
	}
	if d, ok := a.live(p.Name); ok {
		return d, p, nil
	}
	d, err := a.Control.Create(p.Name, p.UUID, p.ReadOnly, p.Targets)
	if err != nil {
		return "", nil, fmt.Errorf("VG %s: LV %s: %w (is dm_mod in the image?)", p.VG.Name, p.LV.Name, err)
	}
	return d.Path, p, nil
}

func (a Activator) roots() (sys, dev string) {
	sys, dev = a.SysRoot, a.DevRoot
	if sys == "" {
		sys = "/sys"
	}
	if dev == "" {
		dev = "/dev"
	}
	return sys, dev
}

// live returns the node of the device-mapper device name if the kernel
// has one (made by an earlier Activate).
func (a Activator) live(name string) (string, bool) {
	sys, _ := a.roots()
	dms, _ := filepath.Glob(filepath.Join(sys, "class", "block", "dm-*", "dm", "name"))
	for _, f := range dms {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == name {
			dir := a.Control.Dir
			if dir == "" {
				dir = "/dev/mapper"
			}
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, true
			}
		}
	}
	return "", false
}

// devices opens every block device in SysRoot/class/block that may hold
// a PV: partitions and whole disks, not device-mapper devices (ours), nor
// empty ones. Those that cannot be opened are left out.
func (a Activator) devices() ([]Device, func(), error) {
	sys, dev := a.roots()
	classBlock := filepath.Join(sys, "class", "block")
	ents, err := os.ReadDir(classBlock)
	if err != nil {
		return nil, nil, fmt.Errorf("lvm: listing block devices: %w (is sysfs mounted on %s?)", err, sys)
	}
	var devs []Device
	var files []io.Closer
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "dm-") {
			continue
		}
		sectors, err := strconv.ParseUint(readTrim(filepath.Join(classBlock, name, "size")), 10, 63)
		if err != nil || sectors == 0 {
			continue
		}
		major, minor, ok := parseDevNumber(readTrim(filepath.Join(classBlock, name, "dev")))
		if !ok {
			continue
		}
		f, err := os.Open(filepath.Join(dev, name))
		if err != nil {
			continue
		}
		files = append(files, f)
		devs = append(devs, Device{Name: name, R: f, Size: int64(sectors) * sectorSize, Major: major, Minor: minor})
	}
	slices.SortFunc(devs, func(x, y Device) int { return strings.Compare(x.Name, y.Name) })
	return devs, closeAll, nil
}

// parseDevNumber parses a sysfs dev attribute, "259:3".
func parseDevNumber(s string) (major, minor uint32, ok bool) {
	ma, mi, found := strings.Cut(s, ":")
	x, err1 := strconv.ParseUint(ma, 10, 32)
	y, err2 := strconv.ParseUint(mi, 10, 32)
	if !found || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(x), uint32(y), true
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// MayName reports whether spec can name a logical volume for Find: a
// /dev/mapper/NAME or /dev/VG/LV path, or UUID= or LABEL= (of the file
// system in it). /dev/sdb1 and PARTUUID= cannot.
func MayName(spec string) bool {
	if strings.HasPrefix(spec, "/dev/mapper/") {
		return true
	}
	if rest, ok := strings.CutPrefix(spec, "/dev/"); ok {
		return strings.Count(rest, "/") == 1
	}
	return strings.HasPrefix(spec, "UUID=") || strings.HasPrefix(spec, "LABEL=")
}

// Waiting reports whether err from Activate may go away as devices appear
// (no such LV yet, a PV missing), rather than being final (an LV of a kind
// that is not assembled, a device-mapper failure).
func Waiting(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrMissingPV)
}
