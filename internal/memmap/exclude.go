// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package memmap

import (
	"encoding/binary"
	"fmt"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumpmem"
)

// batch is how many struct pages are read at once (makedumpfile's
// PGMM_CACHED): 32 KiB with SIZE(page)=64, the only memory Exclude needs
// besides the bitmap it returns.
const batch = 512

// Counts are the page frames Exclude cleared, by reason. A frame is counted
// once, under the first reason that cleared it.
type Counts struct {
	Cache, CachePrivate, User, Free, Unaccepted, HWPoison, Offline uint64
	// Unreadable is the struct pages Exclude could not read (their frames
	// are kept).
	Unreadable uint64
}

func (c *Counts) add(r Reason, n uint64) {
	switch r {
	case Cache:
		c.Cache += n
	case CachePrivate:
		c.CachePrivate += n
	case User:
		c.User += n
	case Free:
		c.Free += n
	case Unaccepted:
		c.Unaccepted += n
	case HWPoison:
		c.HWPoison += n
	case Offline:
		c.Offline += n
	}
}

// Total is the number of frames excluded.
func (c Counts) Total() uint64 {
	return c.Cache + c.CachePrivate + c.User + c.Free + c.Unaccepted + c.HWPoison + c.Offline
}

// Exclude returns the dumpable page frames at dump level (its bits 2, 4, 8
// and 16; bit 1, zero pages, is the writer's business): present (the RAM
// frames, the kdump format's 1st bitmap, covering pfns [0, maxPFN)) minus the
// frames the kernel's struct pages show are unneeded. HWPoison and offline
// frames are excluded at every level, as makedumpfile does.
//
// It walks SPARSEMEM's mem_section array and reads the struct pages of each
// present section 512 at a time through k (the vmemmap by page-table walk).
// A batch of struct pages that cannot be read leaves its frames dumpable;
// Counts.Unreadable counts them.
func Exclude(k *dumpmem.Kernel, level int, maxPFN uint64, present *bitmap.Bitmap) (*bitmap.Bitmap, Counts, error) {
	var cnt Counts
	if present.Len() < maxPFN {
		return nil, cnt, fmt.Errorf("memmap: present bitmap covers %#x pfns, fewer than max pfn %#x", present.Len(), maxPFN)
	}
	l, err := NewLayout(k.Info)
	if err != nil {
		return nil, cnt, err
	}
	dumpable := present.Clone()
	w := walker{k: k, l: l, root: ^uint64(0)}
	pps := l.PagesPerSection()
	buf := make([]byte, batch*l.SizeOfPage)
	sz := uint64(l.SizeOfPage)

	for nr := uint64(0); nr*pps < maxPFN; nr++ {
		memMap, ok, err := w.sectionMemMap(nr)
		if err != nil {
			return nil, cnt, err
		}
		if !ok {
			continue
		}
		start, end := nr*pps, min(nr*pps+pps, maxPFN)
		winStart, winEnd := uint64(1), uint64(0) // the batch in buf: none yet
		for pfn := start; pfn < end; {
			if !present.Get(pfn) { // a hole
				pfn++
				continue
			}
			if pfn < winStart || pfn >= winEnd {
				winStart = pfn &^ (batch - 1)
				winEnd = min(winStart+batch, end)
				winStart = max(winStart, start)
				if err := k.ReadVirt(buf[:(winEnd-winStart)*sz], memMap+winStart*sz); err != nil {
					cnt.Unreadable += winEnd - pfn
					pfn = winEnd
					winStart, winEnd = 1, 0
					continue
				}
			}
			i := pfn - winStart
			page := buf[i*sz : (i+1)*sz]
			var next []byte
			if pfn%batch != batch-1 && pfn+1 < winEnd {
				next = buf[(i+1)*sz : (i+2)*sz]
			}
			r, n := Classify(l, page, next).Decide(l, level, pfn)
			if n == 0 {
				pfn++
				continue
			}
			stop := min(pfn+n, maxPFN)
			for p := pfn; p < stop; p++ {
				if dumpable.Get(p) {
					dumpable.Clear(p)
					cnt.add(r, 1)
				}
			}
			pfn += n
		}
	}
	return dumpable, cnt, nil
}

// walker reads mem_section entries, caching the last root pointer.
type walker struct {
	k       *dumpmem.Kernel
	l       *Layout
	root    uint64 // index of rootPtr; ^0 if none
	rootPtr uint64
}

// sectionMemMap returns the encoded mem_map of section nr, decoded so that
// the struct page of pfn is at memMap + pfn*SIZE(page); ok is false for a
// section without one.
func (w *walker) sectionMemMap(nr uint64) (memMap uint64, ok bool, err error) {
	l := w.l
	var ms uint64
	if l.Extreme() {
		spr := l.SectionsPerRoot()
		ri := nr / spr
		if ri >= uint64(l.MemSectionLength) {
			return 0, false, nil
		}
		if ri != w.root {
			p, err := w.k.ReadU64(l.MemSection + 8*ri)
			if err != nil {
				return 0, false, fmt.Errorf("memmap: reading mem_section root %d: %w", ri, err)
			}
			w.root, w.rootPtr = ri, p
		}
		if w.rootPtr == 0 {
			return 0, false, nil
		}
		ms = w.rootPtr + (nr%spr)*uint64(l.SizeOfMemSection)
	} else {
		ms = l.MemSection + nr*uint64(l.SizeOfMemSection)
	}
	var b [8]byte
	if err := w.k.ReadVirt(b[:], ms+uint64(l.SectionMemMap)); err != nil {
		return 0, false, fmt.Errorf("memmap: reading mem_section %d at %#x: %w", nr, ms, err)
	}
	coded := binary.LittleEndian.Uint64(b[:])
	if coded&sectionMarkedPresent == 0 {
		return 0, false, nil
	}
	return coded & l.SectionMapMask, true, nil
}
