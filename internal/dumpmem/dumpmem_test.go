// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dumpmem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// mapMem is a sparse physical memory of 4 KiB pages.
type mapMem map[uint64][]byte

func (m mapMem) page(pfn uint64) []byte {
	p, ok := m[pfn]
	if !ok {
		p = make([]byte, pageSize)
		m[pfn] = p
	}
	return p
}

func (m mapMem) ReadPhys(p []byte, paddr uint64) error {
	for len(p) > 0 {
		pg, ok := m[paddr/pageSize]
		if !ok {
			return fmt.Errorf("mapMem: %#x: %w", paddr, ErrNotInDump)
		}
		n := copy(p, pg[paddr%pageSize:])
		p, paddr = p[n:], paddr+uint64(n)
	}
	return nil
}

func (m mapMem) write(paddr uint64, b []byte) {
	for len(b) > 0 {
		n := copy(m.page(paddr / pageSize)[paddr%pageSize:], b)
		b, paddr = b[n:], paddr+uint64(n)
	}
}

func (m mapMem) put64(paddr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	m.write(paddr, b[:])
}

// tables builds page tables in a mapMem, allocating table pages from next.
type tables struct {
	mem  mapMem
	k    *Kernel
	next uint64
	sme  uint64
}

func newTables(l5 bool, sme uint64) *tables {
	t := &tables{mem: mapMem{}, next: 0x100000, sme: sme}
	t.k = &Kernel{Mem: t.mem, L5: l5, SMEMask: sme, PGD: t.alloc(), PageOffset: DefaultPageOffset, maxPhys: 1 << 46}
	return t
}

func (t *tables) alloc() uint64 {
	a := t.next
	t.next += pageSize
	t.mem.page(a / pageSize)
	return a
}

// mapVA maps va to pa with a leaf at the level of the given shift (12, 21, 30).
func (t *tables) mapVA(va, pa uint64, leafShift uint) {
	table := t.k.PGD
	for _, shift := range t.k.levels() {
		a := table + (va>>shift)&511*8
		if shift == leafShift {
			e := pa | pagePresent | t.sme
			if shift != 12 {
				e |= pagePSE
			}
			t.mem.put64(a, e)
			return
		}
		var b [8]byte
		t.mem.ReadPhys(b[:], a)
		e := binary.LittleEndian.Uint64(b[:])
		if e&pagePresent == 0 {
			e = t.alloc() | pagePresent | 0x60 | t.sme
			t.mem.put64(a, e)
		}
		table = e & entryMask &^ t.sme
	}
}

func TestWalk(t *testing.T) {
	const va = 0xffffc90000000000 // vmalloc
	for _, l5 := range []bool{false, true} {
		for _, sme := range []uint64{0, 1 << 47} {
			for _, tc := range []struct {
				shift uint
				pa    uint64 // the leaf's frame
				off   uint64 // offset of the address read into the leaf
			}{
				{12, 0x7654000, 0x123},
				{21, 0x40000000 + 3*pmdSize, 0x1f_f123},
				{30, 5 << 30, 0x3fff_f123},
			} {
				t.Run(fmt.Sprintf("l5=%v/sme=%#x/leaf=%d", l5, sme, tc.shift), func(t *testing.T) {
					tb := newTables(l5, sme)
					tb.mapVA(va, tc.pa, tc.shift)
					got, err := tb.k.Walk(va + tc.off)
					if err != nil {
						t.Fatalf("Walk(%#x) = %v", va+tc.off, err)
					}
					if want := tc.pa + tc.off; got != want {
						t.Errorf("Walk(%#x) = %#x; want %#x", va+tc.off, got, want)
					}
					if _, err := tb.k.Walk(va + 1<<39); !errors.Is(err, ErrNotMapped) {
						t.Errorf("Walk(unmapped) = %v; want ErrNotMapped", err)
					}
				})
			}
		}
	}
}

func TestReadVirtAcrossPages(t *testing.T) {
	tb := newTables(false, 0)
	const va = 0xffffc90000001000
	tb.mapVA(va, 0x9000000, 12)
	tb.mapVA(va+pageSize, 0x5000000, 12)
	tb.mem.write(0x9000000+pageSize-3, []byte("abc"))
	tb.mem.write(0x5000000, []byte("def"))
	got := make([]byte, 6)
	if err := tb.k.ReadVirt(got, va+pageSize-3); err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcdef" {
		t.Errorf("ReadVirt = %q; want %q", got, "abcdef")
	}
	if err := tb.k.ReadVirt(got, va+2*pageSize-3); !errors.Is(err, ErrNotMapped) {
		t.Errorf("ReadVirt(past the mapping) = %v; want ErrNotMapped", err)
	}
}

func TestNewKernelPageOffsetFromTables(t *testing.T) {
	for _, l5 := range []bool{false, true} {
		t.Run(fmt.Sprintf("l5=%v", l5), func(t *testing.T) {
			tb := newTables(l5, 0)
			def := uint64(DefaultPageOffset)
			if l5 {
				def = DefaultPageOffsetL5
			}
			pob := def + 37<<30 // a KASLR shift
			tb.mapVA(pob, 0, 30)
			tb.mapVA(pob+1<<30, 1<<30, 21)
			// The kernel image maps init_top_pgt (PGD) at phys_base.
			const physBase = 0x40000
			info := vmcore.ParseInfo([]byte(fmt.Sprintf("SYMBOL(init_top_pgt)=%x\nNUMBER(phys_base)=%d\nNUMBER(pgtable_l5_enabled)=%d\n",
				StartKernelMap+tb.k.PGD-physBase, physBase, map[bool]int{false: 0, true: 1}[l5])))
			k, err := NewKernel(tb.mem, info, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k.PageOffset != pob || k.PGD != tb.k.PGD || k.PhysBase != physBase || k.L5 != l5 {
				t.Errorf("NewKernel = {PageOffset %#x PGD %#x PhysBase %#x L5 %v}; want {%#x %#x %#x %v}", k.PageOffset, k.PGD, k.PhysBase, k.L5, pob, tb.k.PGD, physBase, l5)
			}
			if pa, err := k.VtoP(pob + 0x1234); err != nil || pa != 0x1234 {
				t.Errorf("VtoP(direct map) = %#x, %v; want 0x1234", pa, err)
			}
			if pa, err := k.VtoP(StartKernelMap + 0x5000); err != nil || pa != physBase+0x5000 {
				t.Errorf("VtoP(kernel image) = %#x, %v; want %#x", pa, err, physBase+0x5000)
			}
		})
	}
}

func TestNewKernelFromLoads(t *testing.T) {
	info := vmcore.ParseInfo([]byte("SYMBOL(init_top_pgt)=ffffffff82a10000\nNUMBER(sme_mask)=0x800000000000\n"))
	loads := []vmcore.Phdr{
		{Type: 1, Vaddr: 0xffffffff81000000, Paddr: 0x5000000, Memsz: 1 << 24},
		{Type: 1, Vaddr: 0xffff9a0000100000, Paddr: 0x100000, Memsz: 1 << 20},
	}
	k, err := NewKernel(mapMem{}, info, loads)
	if err != nil {
		t.Fatal(err)
	}
	want := Kernel{PhysBase: 0x4000000, PageOffset: 0xffff9a0000000000, SMEMask: 1 << 47, PGD: 0x2a10000 + 0x4000000}
	got := Kernel{PhysBase: k.PhysBase, PageOffset: k.PageOffset, SMEMask: k.SMEMask, PGD: k.PGD, L5: k.L5}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(Kernel{})); d != "" {
		t.Errorf("NewKernel (-want +got):\n%s", d)
	}
}

func TestFromELF(t *testing.T) {
	file := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	c := &vmcore.Core{Loads: []vmcore.Phdr{
		{Offset: 512, Paddr: 0x20000, Filesz: 256, Memsz: 512},
		{Offset: 0, Paddr: 0x10000, Filesz: 256, Memsz: 256},
	}}
	m := FromELF(bytes.NewReader(file), c)
	for _, tc := range []struct {
		paddr uint64
		n     int
		want  []byte
		err   error
	}{
		{0x10000, 4, []byte("0123"), nil},
		{0x100fe, 2, []byte("ef"), nil},
		{0x200fe, 4, []byte("ef\x00\x00"), nil},
		{0x201ff, 1, []byte{0}, nil},
		{0x100ff, 2, nil, ErrNotInDump},
		{0x30000, 1, nil, ErrNotInDump},
	} {
		got := make([]byte, tc.n)
		err := m.ReadPhys(got, tc.paddr)
		if !errors.Is(err, tc.err) {
			t.Errorf("ReadPhys(%#x) = %v; want %v", tc.paddr, err, tc.err)
			continue
		}
		if err == nil && !bytes.Equal(got, tc.want) {
			t.Errorf("ReadPhys(%#x) = %q; want %q", tc.paddr, got, tc.want)
		}
	}
}
