// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package memmap

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// info61 is the VMCOREINFO of Debian's 6.1.0-50-amd64 with edits: keys
// mapped to "" are deleted, others set.
func info61(t *testing.T, edits map[string]string) *vmcore.Info {
	t.Helper()
	b, err := os.ReadFile("testdata/vmcoreinfo-6.1.0-50-amd64.txt")
	if err != nil {
		t.Fatal(err)
	}
	in := vmcore.ParseInfo(b)
	for k, v := range edits {
		if v == "" {
			delete(in.Values, k)
		} else {
			in.Values[k] = v
		}
	}
	return in
}

func layout61(t *testing.T, edits map[string]string) *Layout {
	t.Helper()
	l, err := NewLayout(info61(t, edits))
	if err != nil {
		t.Fatalf("NewLayout() = %v", err)
	}
	return l
}

func TestNewLayout(t *testing.T) {
	got := layout61(t, nil)
	want := &Layout{
		PageSize: 4096, PageShift: 12,
		SizeOfPage: 64, Flags: 0, Mapping: 24, Mapcount: 48, Private: 40, CompoundHead: 8,
		CompoundOrder: some(17), CompoundDtor: some(16),
		PGLRU: 4, PGPrivate: 13, PGSwapCache: 10, PGSwapBacked: some(19), PGSlab: some(9),
		PGHWPoison: some(23), PGHeadMask: 1 << 16,
		BuddyMapcount: some(-129), OfflineMapcount: some(-257), HugetlbDtor: some(2),
		MaxOrder:         11,
		MemSection:       0xffff8a347fe9e000,
		MemSectionLength: 4096, SizeOfMemSection: 32, SectionMemMap: 0,
		SectionSizeBits: 27, MaxPhysmemBits: 46, SectionMapMask: ^uint64(63),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewLayout(6.1) (-want, +got):\n%s", diff)
	}
	if !got.Extreme() {
		t.Errorf("Extreme() = false; want true (LENGTH(mem_section)=4096 = 2^19/128)")
	}
	if got, want := got.PagesPerSection(), uint64(32768); got != want {
		t.Errorf("PagesPerSection() = %d; want %d", got, want)
	}
	if got, want := got.SectionsPerRoot(), uint64(128); got != want {
		t.Errorf("SectionsPerRoot() = %d; want %d", got, want)
	}

	// 6.3–6.5: the compound fields are folio fields, relative to the head.
	l := layout61(t, map[string]string{
		"OFFSET(page.compound_order)": "", "OFFSET(page.compound_dtor)": "",
		"OFFSET(folio._folio_order)": "81", "OFFSET(folio._folio_dtor)": "80",
	})
	if l.CompoundOrder != some(17) || l.CompoundDtor != some(16) {
		t.Errorf("NewLayout(6.3) compound order, dtor = %v, %v; want 17, 16", l.CompoundOrder, l.CompoundDtor)
	}

	for _, key := range []string{"SIZE(page)", "OFFSET(page.flags)", "NUMBER(PG_lru)", "SYMBOL(mem_section)", "NUMBER(SECTION_SIZE_BITS)"} {
		if _, err := NewLayout(info61(t, map[string]string{key: ""})); !errors.Is(err, ErrMissing) {
			t.Errorf("NewLayout(without %s) = %v; want %v", key, err, ErrMissing)
		}
	}
	if _, err := NewLayout(info61(t, map[string]string{"OFFSET(page._mapcount)": "62"})); err == nil {
		t.Errorf("NewLayout(_mapcount at 62 of 64) = nil error; want one")
	}
}

// page is a struct page of the 6.1 layout being built.
type page [64]byte

func (p page) with(off int, v uint64, size int) page {
	switch size {
	case 1:
		p[off] = byte(v)
	case 4:
		binary.LittleEndian.PutUint32(p[off:], uint32(v))
	default:
		binary.LittleEndian.PutUint64(p[off:], v)
	}
	return p
}

func (p page) flags(bits ...int) page {
	var f uint64
	for _, b := range bits {
		f |= 1 << b
	}
	return p.with(0, f|0x17ffffc0000000 /* node/zone bits */, 8)
}
func (p page) mapcount(v int32) page { return p.with(48, uint64(uint32(v)), 4) }
func (p page) mapping(v uint64) page { return p.with(24, v, 8) }
func (p page) private(v uint64) page { return p.with(40, v, 8) }

const (
	pgLRU, pgSlab, pgSwapCache, pgPrivate, pgHead, pgSwapBacked, pgHWPoison = 4, 9, 10, 13, 16, 19, 23
	anonMapping                                                             = 0xffff8a3441234561
	fileMapping                                                             = 0xffff8a3441234568
)

func TestClassify61(t *testing.T) {
	l := layout61(t, nil)
	free := page{}.mapcount(-1)
	tail1 := func(order, dtor byte) []byte {
		p := page{}.with(8, 0xfffff3c200001000|1, 8).with(17, uint64(order), 1).with(16, uint64(dtor), 1)
		return p[:]
	}
	for _, tc := range []struct {
		name  string
		page  page
		next  []byte
		pfn   uint64
		want  Class
		level map[int]Reason // level -> reason; unlisted levels keep
		n     uint64         // pages covered when excluded
	}{
		{name: "plain kernel page", page: free.flags(), want: Class{}},
		{
			name: "buddy order 3", page: page{}.flags().mapcount(-129).private(3), pfn: 8,
			want: Class{Buddy: true, BuddyOrder: 3}, level: map[int]Reason{16: Free, 31: Free}, n: 8,
		},
		{
			name: "buddy with a bogus order", page: page{}.flags().mapcount(-129).private(11),
			want: Class{Buddy: true, BuddyOrder: 11},
		},
		{
			name: "slab page with the buddy mapcount is no buddy", page: page{}.flags(pgSlab).mapcount(-129),
			want: Class{Slab: true},
		},
		{
			name: "clean file page", page: free.flags(pgLRU).mapping(fileMapping),
			want: Class{Cache: true}, level: map[int]Reason{2: Cache, 4: CachePrivate, 31: Cache}, n: 1,
		},
		{
			name: "file page with buffers", page: free.flags(pgLRU, pgPrivate).mapping(fileMapping),
			want: Class{Cache: true, Private: true}, level: map[int]Reason{4: CachePrivate, 31: CachePrivate}, n: 1,
		},
		{
			name: "anonymous page on the LRU", page: free.flags(pgLRU, pgSwapBacked).mapping(anonMapping),
			want: Class{Cache: true, Anon: true}, level: map[int]Reason{8: User, 31: User}, n: 1,
		},
		{
			name: "swap cache page", page: free.flags(pgSwapCache, pgSwapBacked).mapping(anonMapping),
			want: Class{Cache: true, Anon: true}, level: map[int]Reason{8: User, 31: User}, n: 1,
		},
		{
			name: "PG_swapcache without PG_swapbacked is PG_owner_priv_1", page: free.flags(pgSwapCache).mapping(fileMapping),
			want: Class{},
		},
		{
			name: "slab page whose slab_cache looks anonymous (6.2+)", page: free.flags(pgSlab).mapping(anonMapping),
			want: Class{Slab: true},
		},
		{
			name: "anonymous THP head, order 9", page: free.flags(pgHead, pgLRU, pgSwapBacked).mapping(anonMapping),
			next: tail1(9, 3), pfn: 512,
			want: Class{Cache: true, Anon: true, Head: true, Order: 9}, level: map[int]Reason{8: User, 31: User}, n: 512,
		},
		{
			name: "misaligned compound head", page: free.flags(pgHead, pgLRU, pgSwapBacked).mapping(anonMapping),
			next: tail1(9, 3), pfn: 256,
			want: Class{Cache: true, Anon: true, Head: true, Order: 9}, level: map[int]Reason{8: User, 31: User}, n: 1,
		},
		{
			name: "hugetlbfs head", page: free.flags(pgHead).mapping(fileMapping), next: tail1(9, 2), pfn: 1024,
			want: Class{Head: true, Order: 9, Hugetlb: true}, level: map[int]Reason{8: User, 31: User}, n: 512,
		},
		{
			name: "head without its tail at hand", page: free.flags(pgHead).mapping(fileMapping),
			want: Class{Head: true},
		},
		{
			name: "tail page", page: page{}.with(8, 0xfffff3c200001001, 8).flags(pgLRU).mapping(anonMapping),
			want: Class{Tail: true, Cache: true, Anon: true},
		},
		{
			name: "hwpoison", page: free.flags(pgHWPoison),
			want: Class{HWPoison: true}, level: map[int]Reason{0: HWPoison, 1: HWPoison, 2: HWPoison, 4: HWPoison, 8: HWPoison, 16: HWPoison, 31: HWPoison}, n: 1,
		},
		{
			name: "offline", page: page{}.flags().mapcount(-257),
			want: Class{Offline: true}, level: map[int]Reason{0: Offline, 1: Offline, 2: Offline, 4: Offline, 8: Offline, 16: Offline, 31: Offline}, n: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(l, tc.page[:], tc.next)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify() (-want, +got):\n%s", diff)
			}
			for _, level := range []int{0, 1, 2, 4, 8, 16, 31} {
				r, n := got.Decide(l, level, tc.pfn)
				wantR, wantN := tc.level[level], tc.n
				if wantR == Keep {
					wantN = 0
				}
				if r != wantR || n != wantN {
					t.Errorf("Decide(level %d, pfn %#x) = %v, %d; want %v, %d", level, tc.pfn, r, n, wantR, wantN)
				}
			}
		})
	}
}

// TestClassifyPageTypes covers the later kernels' encodings: hugetlb and
// slab as page types, the order in the first tail page's flags, 6.12's
// page types in the top byte of _mapcount, unaccepted memory.
func TestClassifyPageTypes(t *testing.T) {
	base := map[string]string{
		"OFFSET(page.compound_order)": "", "OFFSET(page.compound_dtor)": "", "NUMBER(HUGETLB_PAGE_DTOR)": "",
	}
	edit := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	l66 := layout61(t, edit(map[string]string{"NUMBER(PG_hugetlb)": "8"}))
	l612 := layout61(t, edit(map[string]string{
		"NUMBER(PG_slab)":                        "",
		"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)":      "-268435456", // 0xf0 << 24
		"NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)":    "-251658240", // 0xf1 << 24
		"NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)":    "-201326592", // 0xf4 << 24
		"NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)":       "-184549376", // 0xf5 << 24
		"NUMBER(PAGE_UNACCEPTED_MAPCOUNT_VALUE)": "-150994944", // 0xf7 << 24
	}))
	tailFlags := func(f uint64) []byte { p := page{}.with(0, f, 8).with(8, 0xfffff3c200001001, 8); return p[:] }
	for _, tc := range []struct {
		name  string
		l     *Layout
		page  page
		next  []byte
		want  Class
		level int
		r     Reason
		n     uint64
	}{
		{
			name: "6.6 hugetlb folio", l: l66, page: page{}.flags(pgHead).mapcount(-1), next: tailFlags(1<<8 | 9),
			want: Class{Head: true, Order: 9, Hugetlb: true}, level: 8, r: User, n: 512,
		},
		{
			name: "6.6 anonymous large folio", l: l66, page: page{}.flags(pgHead, pgLRU, pgSwapBacked).mapping(anonMapping).mapcount(-1),
			next: tailFlags(4), want: Class{Head: true, Order: 4, Cache: true, Anon: true}, level: 31, r: User, n: 16,
		},
		{
			name: "6.12 hugetlb page type", l: l612, page: page{}.flags(pgHead).mapcount(-201326592), next: tailFlags(18),
			want: Class{Head: true, Order: 18, Hugetlb: true}, level: 8, r: User, n: 1 << 18,
		},
		{
			name: "6.12 buddy", l: l612, page: page{}.flags().mapcount(-268435456).private(10),
			want: Class{Buddy: true, BuddyOrder: 10}, level: 16, r: Free, n: 1024,
		},
		{
			name: "6.12 slab with an anonymous-looking mapping", l: l612, page: page{}.flags(pgSlab).mapping(anonMapping).mapcount(-184549376),
			want: Class{Slab: true}, level: 31, r: Keep,
		},
		{
			name: "6.12 PG_slab bit number is no longer slab", l: l612, page: page{}.flags(pgSlab).mapping(anonMapping).mapcount(-1),
			want: Class{Anon: true}, level: 8, r: User, n: 1,
		},
		{
			name: "6.12 offline", l: l612, page: page{}.flags().mapcount(-251658240),
			want: Class{Offline: true}, level: 0, r: Offline, n: 1,
		},
		{
			name: "6.16 unaccepted", l: l612, page: page{}.flags().mapcount(-150994944),
			want: Class{Unaccepted: true}, level: 16, r: Unaccepted, n: 1024,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.l, tc.page[:], tc.next)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify() (-want, +got):\n%s", diff)
			}
			if r, n := got.Decide(tc.l, tc.level, 0); r != tc.r || n != tc.n {
				t.Errorf("Decide(level %d, pfn 0) = %v, %d; want %v, %d", tc.level, r, n, tc.r, tc.n)
			}
		})
	}
}
