// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package lvm reads LVM2 volume groups from their physical volumes, read
// only, and plans the device-mapper table of a linear or striped logical
// volume.
//
// It never writes: the capture environment assembles the LV that holds the
// dump target and leaves the metadata as the crashed system wrote it.
package lvm

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Device is a block device that may hold a physical volume.
type Device struct {
	// Name names the device in messages ("vdb", "nvme0n1p3").
	Name string
	// R reads the device.
	R io.ReaderAt
	// Size is the device's size in bytes.
	Size int64
	// Major and Minor are the device's numbers, for the device-mapper
	// table.
	Major, Minor uint32
}

// VG is a volume group, as its newest metadata describes it.
type VG struct {
	Name string
	// ID is the VG's UUID as LVM prints it (with dashes).
	ID    string
	Seqno uint64
	// ExtentSize is in 512-byte sectors.
	ExtentSize uint64
	Status     []string
	Flags      []string
	PVs        []*PV
	LVs        []*LV
	// From names the device and offset the metadata was read from.
	From string
}

// PV is a physical volume of a VG.
type PV struct {
	// Name is the PV's key in the metadata ("pv0"), which segments use.
	Name string
	// ID is the PV's UUID as LVM prints it (with dashes).
	ID string
	// Hint is the device path LVM last saw the PV on.
	Hint   string
	Status []string
	Flags  []string
	// DevSize, PEStart (the first extent) are in sectors.
	DevSize uint64
	PEStart uint64
	PECount uint64
	// Dev is the device whose label has the PV's ID; nil if none does.
	Dev *Device
}

// LV is a logical volume.
type LV struct {
	Name string
	// ID is the LV's UUID as LVM prints it (with dashes).
	ID       string
	Status   []string
	Flags    []string
	Segments []Segment
}

// Segment maps a run of an LV's extents.
type Segment struct {
	StartExtent, ExtentCount uint64
	// Type is the segment type: "striped" (with one stripe: linear),
	// "thin", "thin-pool", "raid1", "mirror", "cache", "snapshot"...
	Type string
	// StripeCount, StripeSize (sectors) and Stripes are those of a
	// striped segment; StripeSize is 0 for one stripe.
	StripeCount uint64
	StripeSize  uint64
	Stripes     []Stripe
	// Origin and COW are the LVs of a snapshot segment.
	Origin, COW string
}

// Stripe is where a stripe of a segment is: a PV (by its Name) and the
// extent on it.
type Stripe struct {
	PV          string
	StartExtent uint64
}

// Scan reads the labels and metadata of devs and returns their volume
// groups, newest metadata first among copies, each PV bound to the device
// that holds it (or nil: missing), sorted by name.
//
// Devices without an LVM2 label are skipped. Problems that leave the rest
// usable (a damaged label, a metadata copy with a bad checksum, two
// devices with one PV's ID) are returned in problems, each naming its
// device, for the caller to log.
func Scan(devs []Device) (vgs []*VG, problems []error) {
	type labeled struct {
		dev *Device
		l   *label
	}
	var pvs []labeled
	byID := map[string]*VG{}
	sums := map[string]string{} // VG ID -> the text of its newest metadata
	for i := range devs {
		d := &devs[i]
		l, err := readLabel(d.R)
		if errors.Is(err, ErrNoLabel) {
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", d.Name, err))
			continue
		}
		pvs = append(pvs, labeled{d, l})
		for _, a := range l.mdas {
			text, at, err := readMetadata(d.R, a)
			if errors.Is(err, errNoMetadata) {
				continue
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", d.Name, err))
				continue
			}
			vg, err := decodeVG(text)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: metadata at %#x: %w", d.Name, at, err))
				continue
			}
			vg.From = fmt.Sprintf("%s at %#x", d.Name, at)
			cur := byID[vg.ID]
			switch {
			case cur == nil || vg.Seqno > cur.Seqno:
				byID[vg.ID], sums[vg.ID] = vg, string(text)
			case vg.Seqno == cur.Seqno && string(text) != sums[vg.ID]:
				problems = append(problems, fmt.Errorf("%s: VG %s seqno %d differs from the copy on %s; using that one", vg.From, vg.Name, vg.Seqno, cur.From))
			}
		}
	}
	for _, vg := range byID {
		for _, pv := range vg.PVs {
			id := strings.ReplaceAll(pv.ID, "-", "")
			for _, f := range pvs {
				if f.l.pvid != id {
					continue
				}
				if pv.Dev != nil {
					problems = append(problems, fmt.Errorf("VG %s: PV %s (id %s) is on %s and on %s; using %s", vg.Name, pv.Name, pv.ID, pv.Dev.Name, f.dev.Name, pv.Dev.Name))
					continue
				}
				pv.Dev = f.dev
			}
		}
		vgs = append(vgs, vg)
	}
	// sort, not slices: its code is in the capture binary already, and
	// each slices.SortFunc instantiation would add its own.
	sort.Slice(vgs, func(i, j int) bool {
		a, b := vgs[i], vgs[j]
		return a.Name < b.Name || a.Name == b.Name && a.ID < b.ID
	})
	return vgs, problems
}

// Bounds on numbers from the metadata, so that no product or sum of them
// overflows: LVM itself keeps extent counts and sizes in 32 bits.
const (
	maxExtents = 1 << 32
	maxSector  = 1 << 48
)

// decodeVG reads metadata text into a VG.
func decodeVG(text []byte) (*VG, error) {
	top, err := parseText(text)
	if err != nil {
		return nil, err
	}
	if len(top.subs) != 1 {
		return nil, fmt.Errorf("%d top-level sections, want 1 (the VG)", len(top.subs))
	}
	s := top.subs[0]
	vg := &VG{Name: s.name}
	if vg.ID, err = s.str("id"); err == nil && vg.ID == "" {
		err = fmt.Errorf("VG %s: no id", vg.Name)
	}
	if err != nil {
		return nil, err
	}
	if vg.Seqno, err = s.uint("seqno", true); err != nil {
		return nil, err
	}
	if vg.ExtentSize, err = s.uint("extent_size", true); err != nil {
		return nil, err
	}
	if vg.ExtentSize == 0 || vg.ExtentSize >= maxExtents {
		return nil, fmt.Errorf("VG %s: bad extent_size %d", vg.Name, vg.ExtentSize)
	}
	if vg.Status, err = s.strs("status"); err != nil {
		return nil, err
	}
	if vg.Flags, err = s.strs("flags"); err != nil {
		return nil, err
	}
	if p := s.sub("physical_volumes"); p != nil {
		for _, ps := range p.subs {
			pv, err := decodePV(ps)
			if err != nil {
				return nil, fmt.Errorf("VG %s: %w", vg.Name, err)
			}
			vg.PVs = append(vg.PVs, pv)
		}
	}
	if l := s.sub("logical_volumes"); l != nil {
		for _, ls := range l.subs {
			lv, err := decodeLV(ls)
			if err != nil {
				return nil, fmt.Errorf("VG %s: %w", vg.Name, err)
			}
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

func decodePV(s *section) (*PV, error) {
	pv := &PV{Name: s.name}
	var err error
	get := func(k string, dst *uint64, max uint64) {
		if err == nil {
			if *dst, err = s.uint(k, true); err == nil && *dst >= max {
				err = fmt.Errorf("PV %s: %s %d is too large", pv.Name, k, *dst)
			}
		}
	}
	get("pe_start", &pv.PEStart, maxSector)
	get("pe_count", &pv.PECount, maxExtents)
	if err != nil {
		return nil, err
	}
	if pv.DevSize, err = s.uint("dev_size", false); err != nil {
		return nil, err
	}
	if pv.ID, err = s.str("id"); err == nil && pv.ID == "" {
		err = fmt.Errorf("PV %s: no id", pv.Name)
	}
	if err != nil {
		return nil, err
	}
	if pv.Hint, err = s.str("device"); err != nil {
		return nil, err
	}
	if pv.Status, err = s.strs("status"); err != nil {
		return nil, err
	}
	if pv.Flags, err = s.strs("flags"); err != nil {
		return nil, err
	}
	return pv, nil
}

func decodeLV(s *section) (*LV, error) {
	lv := &LV{Name: s.name}
	var err error
	if lv.ID, err = s.str("id"); err != nil {
		return nil, err
	}
	if lv.Status, err = s.strs("status"); err != nil {
		return nil, err
	}
	if lv.Flags, err = s.strs("flags"); err != nil {
		return nil, err
	}
	n, err := s.uint("segment_count", true)
	if err != nil {
		return nil, fmt.Errorf("LV %s: %w", lv.Name, err)
	}
	if n == 0 || n > uint64(len(s.subs)) {
		return nil, fmt.Errorf("LV %s: segment_count %d, but %d sections", lv.Name, n, len(s.subs))
	}
	for i := uint64(1); i <= n; i++ {
		ss := s.sub("segment" + strconv.FormatUint(i, 10))
		if ss == nil {
			return nil, fmt.Errorf("LV %s: no segment%d", lv.Name, i)
		}
		seg, err := decodeSegment(ss)
		if err != nil {
			return nil, fmt.Errorf("LV %s: %w", lv.Name, err)
		}
		lv.Segments = append(lv.Segments, seg)
	}
	sort.Slice(lv.Segments, func(i, j int) bool { return lv.Segments[i].StartExtent < lv.Segments[j].StartExtent })
	return lv, nil
}

func decodeSegment(s *section) (Segment, error) {
	var g Segment
	var err error
	for _, f := range []struct {
		k   string
		dst *uint64
	}{{"start_extent", &g.StartExtent}, {"extent_count", &g.ExtentCount}} {
		if *f.dst, err = s.uint(f.k, true); err != nil {
			return g, err
		}
		if *f.dst >= maxExtents {
			return g, fmt.Errorf("%s: %s %d is too large", s.name, f.k, *f.dst)
		}
	}
	if g.Type, err = s.str("type"); err == nil && g.Type == "" {
		err = fmt.Errorf("%s: no type", s.name)
	}
	if err != nil {
		return g, err
	}
	switch g.Type {
	case "striped":
		if g.StripeCount, err = s.uint("stripe_count", true); err != nil {
			return g, err
		}
		if g.StripeSize, err = s.uint("stripe_size", g.StripeCount > 1); err != nil {
			return g, err
		}
		v := s.keys["stripes"]
		if v.kind != 'l' || g.StripeCount == 0 || uint64(len(v.list)) != 2*min(g.StripeCount, maxExtents) {
			return g, fmt.Errorf("%s: stripe_count %d, but stripes is not that many (PV, extent) pairs", s.name, g.StripeCount)
		}
		for i := 0; i < len(v.list); i += 2 {
			pv, ext := v.list[i], v.list[i+1]
			if pv.kind != 's' || ext.kind != 'i' || ext.num < 0 || ext.num >= maxExtents {
				return g, fmt.Errorf("%s: stripe %d is not (PV name, extent)", s.name, i/2)
			}
			g.Stripes = append(g.Stripes, Stripe{PV: pv.str, StartExtent: uint64(ext.num)})
		}
	case "snapshot":
		if g.Origin, err = s.str("origin"); err != nil {
			return g, err
		}
		if g.COW, err = s.str("cow_store"); err != nil {
			return g, err
		}
	}
	return g, nil
}
