// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/internal/dm"
	"github.com/ukdump/ukdump/internal/targetspec"
)

// Errors a Plan or a Find can wrap, for errors.Is.
var (
	// ErrNotFound: no VG or LV of that name, or no LV holds that file
	// system.
	ErrNotFound = errors.New("not found")
	// ErrMissingPV: a PV the LV needs is on none of the devices.
	ErrMissingPV = errors.New("PV missing")
	// ErrUnsupported: the LV is of a kind that is not assembled (thin,
	// RAID, mirror, cache, snapshot, VDO...), or a component of one.
	ErrUnsupported = errors.New("not assembled")
)

// Plan is how to make an LV's device-mapper device.
type Plan struct {
	VG *VG
	LV *LV
	// Name is the device-mapper name, as LVM makes it: the VG and LV
	// names with each '-' doubled, joined by '-' ("my--vg-root").
	Name string
	// UUID is the device-mapper UUID, as LVM makes it: "LVM-" then the VG
	// and the LV IDs without dashes.
	UUID string
	// Sectors is the LV's size in 512-byte sectors.
	Sectors uint64
	// ReadOnly is set when the VG or the LV is not writable.
	ReadOnly bool
	// Targets is the table: "linear" for a segment of one stripe,
	// "striped" for more.
	Targets []dm.Target

	runs []run
}

// run is the mapping of one segment: Sectors from Start (of the LV),
// striped in chunks of chunk sectors over places (one place: linear).
type run struct {
	start, sectors, chunk uint64
	places                []place
}

// place is a stripe's start: sector off of dev.
type place struct {
	dev *Device
	off uint64
}

// DMName is the device-mapper name LVM gives the LV lv of the VG vg.
func DMName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

func has(list []string, s string) bool { return slices.Contains(list, s) }

// Plan computes the device-mapper table of the LV named lv. It fails,
// naming the LV and why, for an LV that does not exist (ErrNotFound), one
// that is not linear or striped or is a part of another LV
// (ErrUnsupported), or one on a PV that no device holds (ErrMissingPV).
func (vg *VG) Plan(lv string) (*Plan, error) {
	i := slices.IndexFunc(vg.LVs, func(l *LV) bool { return l.Name == lv })
	if i < 0 {
		return nil, fmt.Errorf("VG %s has no LV %s: %w", vg.Name, lv, ErrNotFound)
	}
	l := vg.LVs[i]
	if err := vg.refuse(l); err != nil {
		return nil, err
	}
	p := &Plan{
		VG: vg, LV: l,
		Name:     DMName(vg.Name, l.Name),
		UUID:     "LVM-" + strings.ReplaceAll(vg.ID, "-", "") + strings.ReplaceAll(l.ID, "-", ""),
		ReadOnly: !has(vg.Status, "WRITE") || !has(l.Status, "WRITE"),
	}
	next := uint64(0) // the next extent: segments are sorted and must not leave holes
	for n, g := range l.Segments {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("VG %s: LV %s segment %d: %s", vg.Name, l.Name, n+1, fmt.Sprintf(format, a...))
		}
		if g.StartExtent != next {
			return nil, bad("starts at extent %d, want %d", g.StartExtent, next)
		}
		next += g.ExtentCount
		if g.ExtentCount == 0 || next >= maxExtents || next*vg.ExtentSize > maxSector {
			return nil, bad("%d extents of %d sectors", g.ExtentCount, vg.ExtentSize)
		}
		stripes := uint64(len(g.Stripes))
		if g.ExtentCount%stripes != 0 {
			return nil, bad("%d extents do not divide into %d stripes", g.ExtentCount, stripes)
		}
		per := g.ExtentCount / stripes // extents on each stripe
		r := run{start: g.StartExtent * vg.ExtentSize, sectors: g.ExtentCount * vg.ExtentSize}
		if stripes > 1 {
			if g.StripeSize == 0 || per*vg.ExtentSize%g.StripeSize != 0 {
				return nil, bad("stripe size %d does not divide the %d sectors of a stripe", g.StripeSize, per*vg.ExtentSize)
			}
			r.chunk = g.StripeSize
		}
		for _, s := range g.Stripes {
			pv := vg.pv(s.PV)
			switch {
			case pv == nil:
				return nil, fmt.Errorf("VG %s: LV %s is on %s, which is not a PV of the VG: %w", vg.Name, l.Name, s.PV, ErrUnsupported)
			case pv.Dev == nil || has(pv.Flags, "MISSING"):
				id := "id " + pv.ID
				if pv.Hint != "" {
					id += ", last seen as " + pv.Hint
				}
				return nil, fmt.Errorf("VG %s: PV %s (%s) missing: LV %s cannot be assembled: %w", vg.Name, pv.Name, id, l.Name, ErrMissingPV)
			case s.StartExtent+per > pv.PECount:
				return nil, bad("extents %d-%d are past PV %s's %d", s.StartExtent, s.StartExtent+per-1, pv.Name, pv.PECount)
			}
			// Extents and extent sizes are under 2^32, so end does not
			// overflow; nor does pe_start + end, checked by subtraction.
			end, have := (s.StartExtent+per)*vg.ExtentSize, uint64(max(pv.Dev.Size, 0))/sectorSize
			if end > have || pv.PEStart > have-end {
				return nil, bad("on %s, which has %d sectors, fewer than PV %s needs", pv.Dev.Name, have, pv.Name)
			}
			r.places = append(r.places, place{pv.Dev, pv.PEStart + s.StartExtent*vg.ExtentSize})
		}
		p.runs = append(p.runs, r)
		p.Targets = append(p.Targets, r.target())
	}
	p.Sectors = next * vg.ExtentSize
	return p, nil
}

func (r run) target() dm.Target {
	t := dm.Target{Start: r.start, Length: r.sectors, Type: "linear"}
	var b strings.Builder
	if len(r.places) > 1 {
		t.Type = "striped"
		fmt.Fprintf(&b, "%d %d ", len(r.places), r.chunk)
	}
	for i, pl := range r.places {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d %d", pl.dev.Major, pl.dev.Minor, pl.off)
	}
	t.Params = b.String()
	return t
}

// refuse says why l is not assembled, if it is not.
func (vg *VG) refuse(l *LV) error {
	no := func(why string) error {
		return fmt.Errorf("VG %s: LV %s %s: %w", vg.Name, l.Name, why, ErrUnsupported)
	}
	if has(vg.Status, "EXPORTED") {
		return no("is in an exported VG (vgexport): LVM would not activate it either")
	}
	for _, o := range vg.LVs {
		for _, g := range o.Segments {
			if g.Type != "snapshot" {
				continue
			}
			switch l.Name {
			case g.Origin:
				return no("is the origin of snapshot " + g.COW)
			case g.COW:
				return no("is a snapshot (type snapshot, of " + g.Origin + ")")
			}
		}
	}
	for _, g := range l.Segments {
		if g.Type != "striped" {
			return no(fmt.Sprintf("is of type %s (%s): only linear and striped LVs are assembled", g.Type, kind(g.Type)))
		}
	}
	if !has(l.Status, "VISIBLE") {
		return no("is hidden: a component of another LV")
	}
	return nil
}

// kind names what a segment type is, for messages.
func kind(t string) string {
	for _, k := range []struct{ prefix, what string }{
		{"thin", "thin provisioning"}, {"raid", "RAID"}, {"mirror", "mirror"},
		{"cache", "cache"}, {"writecache", "cache"}, {"snapshot", "snapshot"},
		{"vdo", "VDO"}, {"integrity", "integrity"}, {"error", "error target"}, {"zero", "zero target"},
	} {
		if strings.HasPrefix(t, k.prefix) {
			return k.what
		}
	}
	return "unknown"
}

func (vg *VG) pv(name string) *PV {
	for _, p := range vg.PVs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Prober identifies the file system r starts with (blkid.Probe does).
type Prober func(r io.ReaderAt) (fstype, uuid, label string, err error)

// Find plans the LV that spec names, among vgs:
//   - /dev/mapper/NAME: the LV whose device-mapper name is NAME
//     (DMName),
//   - /dev/VG/LV,
//   - UUID=... or LABEL=...: the LV whose file system probe finds to
//     have it, read from the PVs (LVs that cannot be assembled are
//     skipped, and named in the error if none has it).
//
// Any other spec is ErrNotFound.
func Find(vgs []*VG, spec string, probe Prober) (*Plan, error) {
	if name, ok := strings.CutPrefix(spec, "/dev/mapper/"); ok {
		for _, vg := range vgs {
			for _, l := range vg.LVs {
				if DMName(vg.Name, l.Name) == name {
					return vg.Plan(l.Name)
				}
			}
		}
		return nil, fmt.Errorf("no LVM logical volume is %s (%s): %w", spec, seen(vgs), ErrNotFound)
	}
	if rest, ok := strings.CutPrefix(spec, "/dev/"); ok {
		vgName, lvName, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(lvName, "/") {
			return nil, fmt.Errorf("%s is not /dev/VG/LV: %w", spec, ErrNotFound)
		}
		var match *VG
		for _, vg := range vgs {
			if vg.Name == vgName {
				if match != nil {
					return nil, fmt.Errorf("%s: two VGs are named %s (ids %s and %s)", spec, vgName, match.ID, vg.ID)
				}
				match = vg
			}
		}
		if match == nil {
			return nil, fmt.Errorf("no VG %s for %s (%s): %w", vgName, spec, seen(vgs), ErrNotFound)
		}
		return match.Plan(lvName)
	}
	ts, err := targetspec.ParseDevice(spec)
	if err != nil || (ts.Kind != targetspec.KindUUID && ts.Kind != targetspec.KindLabel) {
		return nil, fmt.Errorf("%s does not name an LV: %w", spec, ErrNotFound)
	}
	var found *Plan
	var skipped []string
	for _, vg := range vgs {
		for _, l := range vg.LVs {
			if !has(l.Status, "VISIBLE") {
				continue
			}
			p, err := vg.Plan(l.Name)
			if err != nil {
				skipped = append(skipped, err.Error())
				continue
			}
			_, uuid, label, err := probe(p.ReaderAt())
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("VG %s: LV %s: %v", vg.Name, l.Name, err))
				continue
			}
			if ts.Kind == targetspec.KindUUID && !strings.EqualFold(uuid, ts.Value) || ts.Kind == targetspec.KindLabel && label != ts.Value {
				continue
			}
			if found != nil {
				return nil, fmt.Errorf("%s is on two LVs: %s/%s and %s/%s", spec, found.VG.Name, found.LV.Name, vg.Name, l.Name)
			}
			found = p
		}
	}
	if found == nil {
		msg := seen(vgs)
		if len(skipped) > 0 {
			msg += "; not probed: " + strings.Join(skipped, "; ")
		}
		return nil, fmt.Errorf("no LVM logical volume has %s (%s): %w", spec, msg, ErrNotFound)
	}
	return found, nil
}

// seen lists the LVs of vgs for a message.
func seen(vgs []*VG) string {
	var names []string
	for _, vg := range vgs {
		for _, l := range vg.LVs {
			if has(l.Status, "VISIBLE") {
				names = append(names, vg.Name+"/"+l.Name)
			}
		}
	}
	if len(names) == 0 {
		return "no LVs found"
	}
	return "LVs found: " + strings.Join(names, " ")
}

// ReaderAt reads the LV from its PVs' devices, as its device-mapper
// device will show it (for probing the file system in it).
func (p *Plan) ReaderAt() io.ReaderAt { return lvReader{p} }

type lvReader struct{ p *Plan }

func (r lvReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("lvm: negative offset " + strconv.FormatInt(off, 10))
	}
	n := 0
	for n < len(b) {
		pos := uint64(off) + uint64(n) // bytes into the LV
		i := slices.IndexFunc(r.p.runs, func(x run) bool { return pos < (x.start+x.sectors)*sectorSize })
		if i < 0 {
			return n, io.EOF
		}
		x := r.p.runs[i]
		rel := pos - x.start*sectorSize
		pl, phys, avail := x.places[0], x.places[0].off*sectorSize+rel, x.sectors*sectorSize-rel
		if len(x.places) > 1 {
			cb := x.chunk * sectorSize
			chunk, within := rel/cb, rel%cb
			pl = x.places[chunk%uint64(len(x.places))]
			phys = pl.off*sectorSize + chunk/uint64(len(x.places))*cb + within
			avail = cb - within
		}
		k := int(min(avail, uint64(len(b)-n)))
		m, err := pl.dev.R.ReadAt(b[n:n+k], int64(phys))
		n += m
		if m < k {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("lvm: LV %s: reading %s at %d: %w", r.p.LV.Name, pl.dev.Name, phys, err)
		}
	}
	return n, nil
}
