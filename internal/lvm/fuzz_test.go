// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"bytes"
	"io"
	"testing"
)

// planAll plans every LV of vgs, with any PV left without a device given
// dev, and reads each planned LV at its start and end: nothing may panic,
// and a plan's targets must tile the LV.
func planAll(t *testing.T, vgs []*VG, dev *Device) {
	for _, vg := range vgs {
		for _, pv := range vg.PVs {
			if pv.Dev == nil {
				pv.Dev = dev
			}
		}
		for _, l := range vg.LVs {
			p, err := vg.Plan(l.Name)
			if err != nil {
				continue
			}
			var next uint64
			for _, x := range p.Targets {
				if x.Start != next || x.Length == 0 {
					t.Fatalf("Plan(%s): target %s after sector %d", l.Name, x, next)
				}
				next += x.Length
			}
			if next != p.Sectors {
				t.Fatalf("Plan(%s): targets cover %d sectors, LV has %d", l.Name, next, p.Sectors)
			}
			b := make([]byte, 1024)
			r := p.ReaderAt()
			r.ReadAt(b, 0)
			r.ReadAt(b, int64(p.Sectors*sectorSize)-100)
			if n, err := r.ReadAt(b, int64(p.Sectors*sectorSize)); n != 0 || err != io.EOF {
				t.Fatalf("Plan(%s): ReadAt(the end) = %d, %v; want 0, EOF", l.Name, n, err)
			}
		}
	}
}

// FuzzText feeds metadata text to the parser, the decoder and the planner.
func FuzzText(f *testing.F) {
	for _, name := range []string{"linear", "stripeA", "thinA", "wrap"} {
		d := image(f, name, 1)
		l, err := readLabel(d.R)
		if err != nil {
			f.Fatal(err)
		}
		text, _, err := readMetadata(d.R, l.mdas[0])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(text)
	}
	f.Add([]byte(`v { id = "x" seqno = 1 extent_size = 4 physical_volumes { p0 { id = "a" pe_start = 8 pe_count = 8 } }
logical_volumes { s { id = "y" status = ["VISIBLE"] segment_count = 1 segment1 { start_extent = 0 extent_count = 6
type = "striped" stripe_count = 3 stripe_size = 2 stripes = ["p0", 1, "p0", 0, "p0", 2] } } } }`))
	f.Add([]byte(`a = [ "s\"", -1, 1.5e3, [] ] # c`))
	dev := &Device{Name: "fuzz", R: bytes.NewReader(make([]byte, 4096)), Size: 1 << 40}
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := parseText(text)
		if err != nil {
			return
		}
		dump(s)
		vg, err := decodeVG(text)
		if err != nil {
			return
		}
		planAll(t, []*VG{vg}, dev)
	})
}

// FuzzScan feeds a device image to Scan (label, metadata area header, ring
// buffer, text) and plans what it finds.
func FuzzScan(f *testing.F) {
	for _, s := range []struct {
		name string
		n    int
	}{{"linear", 16 << 10}, {"stripeB", 16 << 10}, {"wrap", 64 << 10}} {
		f.Add(image(f, s.name, 1).R.(*sparse).head[:s.n])
	}
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, img []byte) {
		d := Device{Name: "fuzz", R: bytes.NewReader(img), Size: int64(len(img))}
		vgs, _ := Scan([]Device{d})
		planAll(t, vgs, &d)
	})
}
