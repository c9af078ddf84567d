// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package memmap

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// fakeMem is physical memory that reads as zeros below limit, except for the
// pages written, and is missing from limit on.
type fakeMem struct {
	pages map[uint64][]byte
	limit uint64
}

func (m *fakeMem) ReadPhys(p []byte, paddr uint64) error {
	for len(p) > 0 {
		if paddr >= m.limit {
			return fmt.Errorf("fakeMem: %#x: %w", paddr, dumpmem.ErrNotInDump)
		}
		var n int
		if pg, ok := m.pages[paddr/4096]; ok {
			n = copy(p, pg[paddr%4096:])
		} else {
			n = min(len(p), int(4096-paddr%4096))
			clear(p[:n])
		}
		p, paddr = p[n:], paddr+uint64(n)
	}
	return nil
}

func (m *fakeMem) write(paddr uint64, b []byte) {
	for len(b) > 0 {
		pg, ok := m.pages[paddr/4096]
		if !ok {
			pg = make([]byte, 4096)
			m.pages[paddr/4096] = pg
		}
		n := copy(pg[paddr%4096:], b)
		b, paddr = b[n:], paddr+uint64(n)
	}
}

func (m *fakeMem) put64(paddr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	m.write(paddr, b[:])
}

// TestExclude runs Exclude on a made-up kernel of three 128 MiB sections
// with the 6.1 layout, everything in the direct map: section 0 has a few
// interesting pages, section 1 has no mem_map, section 2's mem_map is not in
// the dump.
func TestExclude(t *testing.T) {
	const (
		pageOffset = dumpmem.DefaultPageOffset
		rootPA     = 0x10000  // SYMBOL(mem_section): the root array
		sectionsPA = 0x20000  // root[0]: mem_section[0..127]
		memMap0PA  = 0x100000 // section 0's struct pages
		memMap2PA  = 0x4000000
		pps        = 1 << 15
		maxPFN     = 3 * pps
	)
	mem := &fakeMem{pages: map[uint64][]byte{}, limit: memMap2PA}
	mem.put64(rootPA, pageOffset+sectionsPA)
	mem.put64(sectionsPA+0*32, (pageOffset+memMap0PA)|3)
	mem.put64(sectionsPA+2*32, (pageOffset+memMap2PA-2*pps*64)|3)
	at := func(pfn uint64, p page) { mem.write(memMap0PA+pfn*64, p[:]) }
	at(4, page{}.flags().mapcount(-129).private(2))
	at(5, page{}.flags().mapcount(-129).private(0)) // a hole: ignored
	at(8, page{}.flags().mapcount(-129).private(3))
	at(100, page{}.flags(pgLRU).mapcount(-1).mapping(fileMapping))
	at(512, page{}.flags(pgHead, pgLRU, pgSwapBacked).mapcount(-1).mapping(anonMapping))
	at(513, page{}.with(8, pageOffset+memMap0PA+512*64+1, 8).with(17, 9, 1))
	for i := uint64(514); i < 1024; i++ {
		at(i, page{}.with(8, pageOffset+memMap0PA+512*64+1, 8).flags(pgLRU).mapping(anonMapping))
	}
	at(2000, page{}.flags(pgHWPoison))

	info := info61(t, map[string]string{"SYMBOL(mem_section)": fmt.Sprintf("%x", uint64(pageOffset+rootPA))})
	loads := []vmcore.Phdr{{Type: 1, Vaddr: pageOffset, Paddr: 0, Memsz: maxPFN * 4096}}
	k, err := dumpmem.NewKernel(mem, info, loads)
	if err != nil {
		t.Fatalf("dumpmem.NewKernel() = %v", err)
	}
	present := bitmap.New(maxPFN)
	present.SetRange(0, maxPFN)
	present.Clear(5)

	type span struct{ start, end uint64 }
	for _, tc := range []struct {
		level   int
		cleared []span
		want    Counts
	}{
		{0, []span{{2000, 2001}}, Counts{HWPoison: 1}},
		{2, []span{{100, 101}, {2000, 2001}}, Counts{Cache: 1, HWPoison: 1}},
		{8, []span{{512, 1024}, {2000, 2001}}, Counts{User: 512, HWPoison: 1}},
		{16, []span{{4, 5}, {6, 16}, {2000, 2001}}, Counts{Free: 11, HWPoison: 1}},
		{31, []span{{4, 5}, {6, 16}, {100, 101}, {512, 1024}, {2000, 2001}}, Counts{Free: 11, Cache: 1, User: 512, HWPoison: 1}},
	} {
		t.Run(fmt.Sprintf("d%d", tc.level), func(t *testing.T) {
			got, cnt, err := Exclude(k, tc.level, maxPFN, present)
			if err != nil {
				t.Fatalf("Exclude() = %v", err)
			}
			tc.want.Unreadable = pps
			if diff := cmp.Diff(tc.want, cnt); diff != "" {
				t.Errorf("Exclude() counts (-want, +got):\n%s", diff)
			}
			want := present.Clone()
			for _, s := range tc.cleared {
				want.ClearRange(s.start, s.end)
			}
			for pfn := range uint64(maxPFN) {
				if got.Get(pfn) != want.Get(pfn) {
					t.Fatalf("Exclude() pfn %#x dumpable = %v; want %v", pfn, got.Get(pfn), want.Get(pfn))
				}
			}
			if got, want := cnt.Total(), present.Count()-got.Count(); got != want {
				t.Errorf("Counts.Total() = %d; want %d", got, want)
			}
		})
	}

	// Walked in windows, with decisions (the compound page at 512, the
	// buddy blocks) across their ends, and the counts summed: the same.
	for _, win := range []uint64{8, 256, 504, pps} {
		t.Run(fmt.Sprintf("windows of %d", win), func(t *testing.T) {
			whole, wantCnt, err := Exclude(k, 31, maxPFN, present)
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewExcluder(k, 31)
			if err != nil {
				t.Fatal(err)
			}
			var cnt Counts
			for start := uint64(0); start < maxPFN; start += win {
				end := min(start+win, maxPFN)
				w := bitmap.NewRange(start, end)
				for p := start; p < end; p++ {
					if present.Get(p) {
						w.Set(p)
					}
				}
				c, err := e.Window(w, start, end)
				if err != nil {
					t.Fatalf("Window(%#x, %#x) = %v", start, end, err)
				}
				cnt.Free += c.Free
				cnt.Cache += c.Cache
				cnt.User += c.User
				cnt.HWPoison += c.HWPoison
				cnt.Unreadable += c.Unreadable
				for p := start; p < end; p++ {
					if w.Get(p) != whole.Get(p) {
						t.Fatalf("pfn %#x dumpable = %v in windows, %v whole", p, w.Get(p), whole.Get(p))
					}
				}
			}
			if diff := cmp.Diff(wantCnt, cnt); diff != "" {
				t.Errorf("counts in windows (-whole, +windows):\n%s", diff)
			}
			if _, err := e.Window(bitmap.NewRange(0, 8), 0, 8); err == nil {
				t.Errorf("Window before the last one's end = nil error")
			}
		})
	}

	if _, _, err := Exclude(k, 31, maxPFN+1, present); err == nil {
		t.Errorf("Exclude(maxPFN past the present bitmap) = nil error; want one")
	}
}
