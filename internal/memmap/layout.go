// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package memmap decides which page frames of a crashed Linux kernel a dump
// may leave out (makedumpfile's dump levels 2, 4, 8 and 16), by reading the
// kernel's struct page array as its VMCOREINFO describes it.
//
// The predicates follow research/makedumpfile.md section 2.4 and are keyed
// on which VMCOREINFO entries exist, never on the kernel version.
package memmap

import (
	"errors"
	"fmt"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// sectionMapMask clears the flag bits the kernel keeps in the low bits of
// mem_section.section_mem_map (SECTION_MARKED_PRESENT … SECTION_MAP_LAST_BIT);
// the encoded pointer has at least 6 free low bits (research 2.2).
const sectionMapMask = ^uint64(1<<6 - 1)

// sectionMarkedPresent is SECTION_MARKED_PRESENT.
const sectionMarkedPresent = 1

// opt is an optional VMCOREINFO value.
type opt struct {
	V  int64
	OK bool
}

func some(v int64) opt { return opt{V: v, OK: true} }

// Layout is what Classify and Exclude need from VMCOREINFO: where the
// fields of struct page are, which flag bits and page-type values mean
// what, and how mem_section is laid out. Optional entries (missing on some
// kernels) are opt values.
type Layout struct {
	PageSize  uint64
	PageShift uint

	// struct page.
	SizeOfPage   int
	Flags        int // OFFSET(page.flags)
	Mapping      int // OFFSET(page.mapping)
	Mapcount     int // OFFSET(page._mapcount)
	Private      int // OFFSET(page.private)
	CompoundHead int // OFFSET(page.compound_head) (7.1+: page.compound_info)

	// Compound order and destructor, as offsets into the first tail page
	// (≤6.5: OFFSET(page.compound_order/dtor), 6.3–6.5 from
	// OFFSET(folio._folio_order/_folio_dtor) - SIZE(page)). When
	// CompoundOrder is not OK the order is the low byte of the first tail
	// page's flags (6.6+).
	CompoundOrder opt
	CompoundDtor  opt

	// Page flag bit numbers; PGHeadMask is 1<<PG_head.
	PGLRU        int
	PGPrivate    int
	PGSwapCache  int
	PGSwapBacked opt
	PGSlab       opt // ≤6.9
	PGHWPoison   opt // CONFIG_MEMORY_FAILURE
	PGHugetlb    opt // 6.6–6.8
	PGHeadMask   uint64

	// Page types: values of _mapcount (int32).
	BuddyMapcount      opt
	OfflineMapcount    opt
	SlabMapcount       opt // 6.10+
	HugetlbMapcount    opt // 6.9+
	UnacceptedMapcount opt // 6.16+
	HugetlbDtor        opt // ≤6.5: HUGETLB_PAGE_DTOR

	// MaxOrder is LENGTH(zone.free_area) (NR_PAGE_ORDERS): buddy orders are
	// below it. Zero if unknown.
	MaxOrder int64

	// SPARSEMEM.
	MemSection       uint64 // SYMBOL(mem_section): the root array
	MemSectionLength int64  // LENGTH(mem_section): NR_SECTION_ROOTS
	SizeOfMemSection int64
	SectionMemMap    int64 // OFFSET(mem_section.section_mem_map)
	SectionSizeBits  uint
	MaxPhysmemBits   uint
	SectionMapMask   uint64
}

// PagesPerSection is 1 << (SECTION_SIZE_BITS - PAGE_SHIFT).
func (l *Layout) PagesPerSection() uint64 { return 1 << (l.SectionSizeBits - l.PageShift) }

// SectionsPerRoot is PAGE_SIZE / SIZE(mem_section): the mem_section structs
// one root array entry points to (SPARSEMEM_EXTREME).
func (l *Layout) SectionsPerRoot() uint64 { return l.PageSize / uint64(l.SizeOfMemSection) }

// Extreme reports whether mem_section is a SPARSEMEM_EXTREME root array of
// pointers (LENGTH(mem_section) is NR_SECTION_ROOTS) rather than a static
// array of mem_section structs.
func (l *Layout) Extreme() bool {
	nr := uint64(1) << (l.MaxPhysmemBits - l.SectionSizeBits)
	spr := l.SectionsPerRoot()
	return uint64(l.MemSectionLength) == (nr+spr-1)/spr
}

// ErrMissing is wrapped by NewLayout's error when VMCOREINFO lacks an
// entry page exclusion cannot do without.
var ErrMissing = errors.New("VMCOREINFO entry missing")

// NewLayout decodes the entries of info that page exclusion uses.
func NewLayout(info *vmcore.Info) (*Layout, error) {
	if info == nil {
		return nil, fmt.Errorf("memmap: no VMCOREINFO: %w", ErrMissing)
	}
	var missing []string
	need := func(v int64, ok bool, key string) int64 {
		if !ok {
			missing = append(missing, key)
		}
		return v
	}
	num := func(name string) int64 { v, ok := info.Number(name); return need(v, ok, "NUMBER("+name+")") }
	off := func(name string) int64 { v, ok := info.Offset(name); return need(v, ok, "OFFSET("+name+")") }
	size := func(name string) int64 { v, ok := info.SizeOf(name); return need(v, ok, "SIZE("+name+")") }
	optNum := func(name string) opt { v, ok := info.Number(name); return opt{v, ok} }

	l := &Layout{SectionMapMask: sectionMapMask}
	ps := info.PageSize()
	if ps <= 0 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("memmap: PAGESIZE %d: %w", ps, ErrMissing)
	}
	l.PageSize = uint64(ps)
	for uint64(1)<<l.PageShift < l.PageSize {
		l.PageShift++
	}

	l.SizeOfPage = int(size("page"))
	l.Flags = int(off("page.flags"))
	l.Mapping = int(off("page.mapping"))
	l.Mapcount = int(off("page._mapcount"))
	l.Private = int(off("page.private"))
	if v, ok := info.Offset("page.compound_head"); ok {
		l.CompoundHead = int(v)
	} else if v, ok := info.Offset("page.compound_info"); ok {
		l.CompoundHead = int(v)
	} else {
		missing = append(missing, "OFFSET(page.compound_head)")
	}
	if v, ok := info.Offset("page.compound_order"); ok {
		l.CompoundOrder = some(v)
	} else if v, ok := info.Offset("folio._folio_order"); ok {
		l.CompoundOrder = some(v - int64(l.SizeOfPage))
	}
	if v, ok := info.Offset("page.compound_dtor"); ok {
		l.CompoundDtor = some(v)
	} else if v, ok := info.Offset("folio._folio_dtor"); ok {
		l.CompoundDtor = some(v - int64(l.SizeOfPage))
	}

	l.PGLRU = int(num("PG_lru"))
	l.PGPrivate = int(num("PG_private"))
	l.PGSwapCache = int(num("PG_swapcache"))
	l.PGSwapBacked = optNum("PG_swapbacked")
	l.PGSlab = optNum("PG_slab")
	l.PGHWPoison = optNum("PG_hwpoison")
	l.PGHugetlb = optNum("PG_hugetlb")
	if v, ok := info.Number("PG_head_mask"); ok {
		l.PGHeadMask = uint64(v)
	}

	l.BuddyMapcount = optNum("PAGE_BUDDY_MAPCOUNT_VALUE")
	l.OfflineMapcount = optNum("PAGE_OFFLINE_MAPCOUNT_VALUE")
	l.SlabMapcount = optNum("PAGE_SLAB_MAPCOUNT_VALUE")
	l.HugetlbMapcount = optNum("PAGE_HUGETLB_MAPCOUNT_VALUE")
	l.UnacceptedMapcount = optNum("PAGE_UNACCEPTED_MAPCOUNT_VALUE")
	l.HugetlbDtor = optNum("HUGETLB_PAGE_DTOR")
	if v, ok := info.Length("zone.free_area"); ok {
		l.MaxOrder = v
	}

	if v, ok := info.Symbol("mem_section"); ok {
		l.MemSection = v
	} else {
		missing = append(missing, "SYMBOL(mem_section)")
	}
	l.MemSectionLength, _ = info.Length("mem_section")
	l.SizeOfMemSection = size("mem_section")
	l.SectionMemMap = off("mem_section.section_mem_map")
	l.SectionSizeBits = uint(num("SECTION_SIZE_BITS"))
	l.MaxPhysmemBits = uint(num("MAX_PHYSMEM_BITS"))

	if len(missing) > 0 {
		return nil, fmt.Errorf("memmap: %v: %w", missing, ErrMissing)
	}
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{l.SizeOfPage > 0, "SIZE(page)"},
		{l.SizeOfMemSection > 0 && uint64(l.SizeOfMemSection) <= l.PageSize, "SIZE(mem_section)"},
		{l.SectionSizeBits > l.PageShift && l.SectionSizeBits < 64, "NUMBER(SECTION_SIZE_BITS)"},
		{l.MaxPhysmemBits >= l.SectionSizeBits && l.MaxPhysmemBits < 64, "NUMBER(MAX_PHYSMEM_BITS)"},
	} {
		if !c.ok {
			return nil, fmt.Errorf("memmap: implausible %s", c.what)
		}
	}
	for _, f := range []struct{ off, size int }{
		{l.Flags, 8}, {l.Mapping, 8}, {l.Mapcount, 4}, {l.Private, 8}, {l.CompoundHead, 8},
	} {
		if f.off < 0 || f.off+f.size > l.SizeOfPage {
			return nil, fmt.Errorf("memmap: struct page field offset %d outside SIZE(page) %d", f.off, l.SizeOfPage)
		}
	}
	return l, nil
}
