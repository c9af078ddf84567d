// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package memmap

import (
	"encoding/binary"
	"fmt"

	"github.com/ukdump/ukdump/internal/dumplevel"
)

// Class is what one struct page says about its page frame, independent of
// the dump level.
type Class struct {
	// Tail: a tail page of a compound page (compound_head bit 0); its head
	// decides for it.
	Tail bool
	// Buddy: a free page heading a buddy block of order BuddyOrder
	// (page.private).
	Buddy      bool
	BuddyOrder uint64
	// Unaccepted: memory a confidential guest has not accepted yet (6.16+).
	Unaccepted bool
	// Cache: on an LRU list, or in the swap cache.
	Cache bool
	// Private: PG_private (buffers or fs data attached).
	Private bool
	// Anon: page.mapping has PAGE_MAPPING_ANON and the page is not slab.
	Anon bool
	// Slab: owned by the slab allocator.
	Slab bool
	// Hugetlb: the head of a hugetlbfs page.
	Hugetlb bool
	// HWPoison: PG_hwpoison, memory the kernel found broken.
	HWPoison bool
	// Offline: a page type PG_offline page (ballooned, hot-unplugged).
	Offline bool
	// Head: PG_head, with Order the compound order from the first tail page
	// (0 if that page was not given).
	Head  bool
	Order uint64
}

// Reason is why a page frame is left out of a dump.
type Reason int

// Reasons, in makedumpfile's terms.
const (
	Keep         Reason = iota
	Free                // DL 16: buddy free pages
	Unaccepted          // DL 16: unaccepted memory
	Cache               // DL 2: page cache without private data
	CachePrivate        // DL 4: page cache with or without private data
	User                // DL 8: anonymous and hugetlbfs pages
	HWPoison            // always
	Offline             // always
	numReasons
)

func (r Reason) String() string {
	switch r {
	case Keep:
		return "keep"
	case Free:
		return "free"
	case Unaccepted:
		return "unaccepted"
	case Cache:
		return "cache"
	case CachePrivate:
		return "cache private"
	case User:
		return "user data"
	case HWPoison:
		return "hwpoison"
	case Offline:
		return "offline"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

func testBit(flags uint64, nr int) bool { return nr >= 0 && nr < 64 && flags&(1<<uint(nr)) != 0 }

// Classify decodes one struct page (SIZE(page) bytes of page). next is the
// struct page that follows it (the first tail page when page is a compound
// head), or nil when it is not at hand; only a head needs it, for its order
// and (≤6.8) whether it is hugetlb.
func Classify(l *Layout, page, next []byte) Class {
	le := binary.LittleEndian
	flags := le.Uint64(page[l.Flags:])
	mapping := le.Uint64(page[l.Mapping:])
	mapcount := int64(int32(le.Uint32(page[l.Mapcount:])))
	private := le.Uint64(page[l.Private:])
	head := le.Uint64(page[l.CompoundHead:])

	var c Class
	c.Tail = head&1 != 0
	c.Slab = (l.SlabMapcount.OK && mapcount == l.SlabMapcount.V) || (l.PGSlab.OK && testBit(flags, int(l.PGSlab.V)))
	c.Anon = mapping&1 != 0 && !c.Slab
	c.Private = testBit(flags, l.PGPrivate)
	c.Cache = testBit(flags, l.PGLRU) ||
		((!l.PGSwapBacked.OK || testBit(flags, int(l.PGSwapBacked.V))) && testBit(flags, l.PGSwapCache))
	c.Buddy = !c.Slab && l.BuddyMapcount.OK && mapcount == l.BuddyMapcount.V
	if c.Buddy {
		c.BuddyOrder = private
	}
	c.Unaccepted = l.UnacceptedMapcount.OK && mapcount == l.UnacceptedMapcount.V
	c.HWPoison = l.PGHWPoison.OK && testBit(flags, int(l.PGHWPoison.V))
	c.Offline = l.OfflineMapcount.OK && !c.Slab && mapcount == l.OfflineMapcount.V

	c.Head = l.PGHeadMask != 0 && flags&l.PGHeadMask != 0
	if c.Head && len(next) >= l.SizeOfPage {
		tflags := le.Uint64(next[l.Flags:])
		switch {
		case l.HugetlbMapcount.OK: // 6.9+
			c.Order = tflags & 0xff
			c.Hugetlb = mapcount == l.HugetlbMapcount.V
		case l.PGHugetlb.OK: // 6.6–6.8
			c.Order = tflags & 0xff
			c.Hugetlb = testBit(tflags, int(l.PGHugetlb.V))
		default: // ≤6.5
			if l.CompoundOrder.OK && inPage(l, l.CompoundOrder.V) {
				c.Order = uint64(next[l.CompoundOrder.V])
			}
			if l.CompoundDtor.OK && inPage(l, l.CompoundDtor.V) && l.HugetlbDtor.OK {
				c.Hugetlb = int64(next[l.CompoundDtor.V]) == l.HugetlbDtor.V
			}
		}
	}
	return c
}

func inPage(l *Layout, off int64) bool { return off >= 0 && off < int64(l.SizeOfPage) }

// Decide applies dump level to the page frame pfn of class c: the first
// matching rule of makedumpfile's __exclude_unnecessary_pages() wins. It
// returns why the frame is excluded and how many frames from pfn on the
// decision covers: 0 to keep it (and for tail pages), 1<<order for a free
// buddy block or a compound page.
func (c Class) Decide(l *Layout, level int, pfn uint64) (Reason, uint64) {
	if c.Tail {
		return Keep, 0
	}
	n := uint64(1)
	if c.Head && c.Order > 0 && c.Order < 64 && pfn&(1<<c.Order-1) == 0 {
		n = 1 << c.Order
	}
	switch {
	case level&dumplevel.Free != 0 && c.Buddy:
		if c.BuddyOrder >= 64 || (l.MaxOrder > 0 && c.BuddyOrder >= uint64(l.MaxOrder)) {
			return Keep, 0 // a bogus order: makedumpfile warns and keeps the page
		}
		return Free, 1 << c.BuddyOrder
	case level&dumplevel.Free != 0 && c.Unaccepted && l.MaxOrder > 0:
		return Unaccepted, 1 << (l.MaxOrder - 1)
	case level&dumplevel.Cache != 0 && c.Cache && !c.Private && !c.Anon:
		return Cache, n
	case level&dumplevel.CachePrivate != 0 && c.Cache && !c.Anon:
		return CachePrivate, n
	case level&dumplevel.User != 0 && (c.Anon || c.Hugetlb):
		return User, n
	case c.HWPoison:
		return HWPoison, n
	case c.Offline:
		return Offline, n
	}
	return Keep, 0
}
