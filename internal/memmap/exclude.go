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
// frames are excluded at every level, as makedumpfile does. It is one
// Excluder.Window over the whole machine; the collector walks windows.
func Exclude(k *dumpmem.Kernel, level int, maxPFN uint64, present *bitmap.Bitmap) (*bitmap.Bitmap, Counts, error) {
	if present.Len() < maxPFN {
		return nil, Counts{}, fmt.Errorf("memmap: present bitmap covers %#x pfns, fewer than max pfn %#x", present.Len(), maxPFN)
	}
	e, err := NewExcluder(k, level)
	if err != nil {
		return nil, Counts{}, err
	}
	dumpable := present.Clone()
	cnt, err := e.Window(dumpable, 0, maxPFN)
	return dumpable, cnt, err
}

// An Excluder walks SPARSEMEM's mem_section array window by window of
// pfns, in ascending order, and clears the frames of each window that the
// kernel's struct pages show are unneeded at its dump level. Its memory is
// one batch of struct pages, whatever the machine's size; a decision that
// covers frames past a window's end (a compound page, a buddy block) is
// carried into the next windows.
type Excluder struct {
	k     *dumpmem.Kernel
	l     *Layout
	level int
	w     walker
	buf   []byte
	// next is the end of the last window: windows come in order.
	next uint64
	// carryEnd and carry: the frames below carryEnd, past the windows
	// walked, are excluded for carry.
	carryEnd uint64
	carry    Reason
}

// NewExcluder returns an Excluder for the dump level over the kernel k.
func NewExcluder(k *dumpmem.Kernel, level int) (*Excluder, error) {
	l, err := NewLayout(k.Info)
	if err != nil {
		return nil, err
	}
	return &Excluder{k: k, l: l, level: level, w: walker{k: k, l: l, root: ^uint64(0)}, buf: make([]byte, batch*l.SizeOfPage)}, nil
}

// PagesPerSection is the SPARSEMEM section size in frames: windows that
// start at a multiple of it read each section's struct pages once.
func (e *Excluder) PagesPerSection() uint64 { return e.l.PagesPerSection() }

// smallBatch is the first read of struct pages after a jump (a free block
// or compound page skipped): 8 struct pages, 512 bytes. Reads grow to batch
// while the walk goes on page by page, so memory that is mostly free (an
// idle machine: buddy blocks of 4 MiB) costs one small read per block, not
// a whole batch.
const smallBatch = 8

// Window clears in dumpable, for the frames in [start, end), those that
// are not needed: dumpable holds the present frames of at least that range
// on entry. Windows must be walked in ascending order, each starting at or
// after the end of the last. It returns the frames cleared, by reason.
//
// It reads the struct pages of each present section through k (the vmemmap
// by page-table walk). A batch of struct pages that cannot be read leaves
// its frames dumpable; Counts.Unreadable counts them.
func (e *Excluder) Window(dumpable *bitmap.Bitmap, start, end uint64) (Counts, error) {
	var cnt Counts
	if start < e.next {
		return cnt, fmt.Errorf("memmap: window [%#x, %#x) before the last one's end %#x", start, end, e.next)
	}
	if start < dumpable.Start() || end > dumpable.Len() {
		return cnt, fmt.Errorf("memmap: window [%#x, %#x) outside the bitmap [%#x, %#x)", start, end, dumpable.Start(), dumpable.Len())
	}
	e.next = end
	l := e.l
	clearRun := func(from, to uint64, r Reason) {
		cnt.add(r, dumpable.CountRange(from, to))
		dumpable.ClearRange(from, to)
	}
	pfn := start
	if e.carryEnd > pfn {
		stop := min(e.carryEnd, end)
		clearRun(pfn, stop, e.carry)
		pfn = stop
	}
	pps := l.PagesPerSection()
	sz := uint64(l.SizeOfPage)
	size := uint64(smallBatch)
	for nr := pfn / pps; pfn < end; nr++ {
		secStart, secEnd := nr*pps, min(nr*pps+pps, end)
		pfn = max(pfn, secStart)
		if pfn >= secEnd {
			continue
		}
		memMap, ok, err := e.w.sectionMemMap(nr)
		if err != nil {
			return cnt, err
		}
		if !ok {
			pfn = secEnd
			continue
		}
		// The struct pages a section may be read to: its end, not the
		// window's, so that a head page at the window's end has its first
		// tail page at hand as in a walk of the whole machine.
		readEnd := nr*pps + pps
		winStart, winEnd := uint64(1), uint64(0) // the struct pages in buf: none yet
		for pfn < secEnd {
			if !dumpable.Get(pfn) { // a hole, or already excluded
				if p, ok := dumpable.NextSet(pfn); ok {
					pfn = min(p, secEnd)
				} else {
					pfn = secEnd
				}
				continue
			}
			// The batch of pfn ends at a multiple of batch (or the
			// section's end); within it, the next struct page is at hand.
			lim := min((pfn|(batch-1))+1, readEnd)
			need := pfn
			if pfn+1 < lim {
				need = pfn + 1
			}
			if pfn < winStart || need >= winEnd {
				if pfn == winEnd {
					size = min(2*size, batch) // walking page by page: read more
				} else {
					size = smallBatch
				}
				winStart, winEnd = pfn, min(max(pfn+size, need+1), lim)
				if err := e.k.ReadVirt(e.buf[:(winEnd-winStart)*sz], memMap+winStart*sz); err != nil {
					// As a whole batch: the frames up to its end (in
					// this window) are kept.
					stop := min(lim, secEnd)
					cnt.Unreadable += stop - pfn
					pfn = stop
					winStart, winEnd = 1, 0
					continue
				}
			}
			i := pfn - winStart
			page := e.buf[i*sz : (i+1)*sz]
			var next []byte
			if pfn+1 < lim {
				next = e.buf[(i+1)*sz : (i+2)*sz]
			}
			r, n := Classify(l, page, next).Decide(l, e.level, pfn)
			if n == 0 {
				pfn++
				continue
			}
			stop := min(pfn+n, end)
			clearRun(pfn, stop, r)
			if pfn+n > end {
				e.carryEnd, e.carry = pfn+n, r
			}
			pfn += n
		}
	}
	return cnt, nil
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
