// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dumpmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// x86_64 layout constants (arch/x86/include/asm/page_64_types.h, pgtable_64_types.h).
const (
	// StartKernelMap is __START_KERNEL_map, where the kernel image is mapped.
	StartKernelMap = 0xffffffff80000000
	// kernelImageSize is KERNEL_IMAGE_SIZE with KASLR (1 GiB); modules follow.
	kernelImageSize = 1 << 30
	// DefaultPageOffset is __PAGE_OFFSET_BASE for 4-level paging, and
	// DefaultPageOffsetL5 for 5-level: the direct map without KASLR.
	DefaultPageOffset   = 0xffff888000000000
	DefaultPageOffsetL5 = 0xff11000000000000

	pageSize    = 4096
	entryMask   = 0x000ffffffffff000 // bits 12-51 of a page-table entry
	pagePresent = 1 << 0
	pagePSE     = 1 << 7
	pudSize     = 1 << 30
	pmdSize     = 1 << 21
)

// ErrNotMapped is wrapped by VtoP's errors for a virtual address the
// kernel's page tables do not map.
var ErrNotMapped = errors.New("virtual address not mapped")

// Kernel is the crashed x86_64 kernel's memory, read by virtual address.
type Kernel struct {
	Mem  Mem
	Info *vmcore.Info
	// PhysBase is phys_base: where the kernel image was loaded, minus its
	// link-time physical address.
	PhysBase uint64
	// PageOffset is page_offset_base: the start of the direct map.
	PageOffset uint64
	// L5 is true when the kernel ran with 5-level paging.
	L5 bool
	// SMEMask is the AMD SME encryption bit, cleared from every entry.
	SMEMask uint64
	// PGD is the physical address of the top-level page table (init_top_pgt).
	PGD uint64
	// maxPhys is 1<<MAX_PHYSMEM_BITS: the size of the direct map.
	maxPhys uint64

	// leaf caches the last page-table walk's leaf (its virtual base,
	// physical base and size): the mem_map walk reads struct pages front to
	// back, mostly inside one 2 MiB vmemmap page. Hence a Kernel is not safe
	// for concurrent use.
	leafVA, leafPA, leafSize uint64
}

// NewKernel describes the kernel whose memory m holds, from its VMCOREINFO
// and, for ELF cores, the PT_LOAD headers (nil for kdump-compressed files).
func NewKernel(m Mem, info *vmcore.Info, loads []vmcore.Phdr) (*Kernel, error) {
	if info == nil {
		return nil, errors.New("dumpmem: the dump has no VMCOREINFO")
	}
	k := &Kernel{Mem: m, Info: info}
	if v, ok := infoUint(info, "NUMBER(pgtable_l5_enabled)"); ok {
		k.L5 = v != 0
	}
	if v, ok := infoUint(info, "NUMBER(sme_mask)"); ok {
		k.SMEMask = v
	}
	bits := uint64(46)
	if k.L5 {
		bits = 52
	}
	if v, ok := infoUint(info, "NUMBER(MAX_PHYSMEM_BITS)"); ok && v > 0 && v <= 56 {
		bits = v
	}
	k.maxPhys = 1 << bits

	if v, ok := infoUint(info, "NUMBER(phys_base)"); ok {
		k.PhysBase = v
	} else {
		found := false
		for _, p := range loads {
			if p.Vaddr >= StartKernelMap {
				k.PhysBase = p.Paddr - (p.Vaddr - StartKernelMap)
				found = true
				break
			}
		}
		if !found {
			return nil, errors.New("dumpmem: no phys_base: VMCOREINFO lacks NUMBER(phys_base) and no PT_LOAD maps the kernel image")
		}
	}
	top, ok := info.Symbol("init_top_pgt")
	if !ok {
		return nil, errors.New("dumpmem: VMCOREINFO lacks SYMBOL(init_top_pgt)")
	}
	if top < StartKernelMap {
		return nil, fmt.Errorf("dumpmem: SYMBOL(init_top_pgt) %#x is not in the kernel image", top)
	}
	k.PGD = top - StartKernelMap + k.PhysBase

	for _, p := range loads {
		if p.Vaddr != 0 && p.Vaddr < StartKernelMap && p.Vaddr >= p.Paddr {
			k.PageOffset = p.Vaddr - p.Paddr
			return k, nil
		}
	}
	def := uint64(DefaultPageOffset)
	if k.L5 {
		def = DefaultPageOffsetL5
	}
	k.PageOffset = def
	// Under KASLR the direct map starts at a random 1 GiB boundary above the
	// default; it is the first region mapped there, and maps physical
	// address 0 at its start.
	if va, ok := k.firstMapped(def); ok {
		if pa, err := k.Walk(va); err == nil && va >= pa {
			k.PageOffset = va - pa
		}
	}
	return k, nil
}

// infoUint parses a VMCOREINFO value as decimal, or hexadecimal with 0x.
func infoUint(info *vmcore.Info, key string) (uint64, bool) {
	s, ok := info.Values[key]
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return v, true
	}
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return uint64(v), true
	}
	return 0, false
}

// levels returns the page-table index shifts, top level first.
func (k *Kernel) levels() []uint {
	if k.L5 {
		return []uint{48, 39, 30, 21, 12}
	}
	return []uint{39, 30, 21, 12}
}

func (k *Kernel) entry(table uint64, idx uint64) (uint64, error) {
	var b [8]byte
	a := table + idx*8
	if err := k.Mem.ReadPhys(b[:], a); err != nil {
		return 0, fmt.Errorf("page-table entry at %#x: %w", a, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// Walk translates va by walking the kernel's page tables from PGD, with
// 1 GiB and 2 MiB leaves.
func (k *Kernel) Walk(va uint64) (uint64, error) {
	if k.leafSize != 0 && va-k.leafVA < k.leafSize {
		return k.leafPA + (va - k.leafVA), nil
	}
	pa, size, err := k.walk(va)
	if err == nil {
		k.leafVA, k.leafPA, k.leafSize = va&^(size-1), pa&^(size-1), size
	}
	return pa, err
}

// walk translates va through the page tables and returns the size of the
// leaf that maps it.
func (k *Kernel) walk(va uint64) (uint64, uint64, error) {
	table := k.PGD
	mask := uint64(entryMask) &^ k.SMEMask
	lv := k.levels()
	for i, shift := range lv {
		e, err := k.entry(table, (va>>shift)&511)
		if err != nil {
			return 0, 0, fmt.Errorf("dumpmem: translating %#x: %w", va, err)
		}
		if e&pagePresent == 0 {
			return 0, 0, fmt.Errorf("dumpmem: translating %#x: level-%d entry %#x not present: %w", va, len(lv)-i, e, ErrNotMapped)
		}
		if shift == 12 {
			return e&mask | va&(pageSize-1), pageSize, nil
		}
		if e&pagePSE != 0 {
			switch shift {
			case 30:
				return e&mask&^(pudSize-1) | va&(pudSize-1), pudSize, nil
			case 21:
				return e&mask&^(pmdSize-1) | va&(pmdSize-1), pmdSize, nil
			}
			return 0, 0, fmt.Errorf("dumpmem: translating %#x: huge-page bit in level-%d entry %#x", va, len(lv)-i, e)
		}
		table = e & mask
	}
	panic("unreachable")
}

// VtoP translates a kernel virtual address to a physical one: directly for
// the kernel image and the direct map, else by a page-table walk.
func (k *Kernel) VtoP(va uint64) (uint64, error) {
	switch {
	case va >= StartKernelMap && va-StartKernelMap < kernelImageSize:
		return va - StartKernelMap + k.PhysBase, nil
	case va >= k.PageOffset && va-k.PageOffset < k.maxPhys:
		return va - k.PageOffset, nil
	}
	return k.Walk(va)
}

// firstMapped finds the lowest mapped address at or above start (in the
// top-level entries from start's to the end of the table).
func (k *Kernel) firstMapped(start uint64) (uint64, bool) {
	lv := k.levels()
	// Sign-extension: the top level covers the upper half of the address space.
	top := uint64(48)
	if k.L5 {
		top = 57
	}
	high := ^uint64(0) << top
	var rec func(table, base uint64, level int) (uint64, bool)
	budget := 1 << 16 // entries read, at most
	mask := uint64(entryMask) &^ k.SMEMask
	rec = func(table, base uint64, level int) (uint64, bool) {
		shift := lv[level]
		first := uint64(0)
		if start > base && (start-base)>>shift < 512 {
			first = (start - base) >> shift
		}
		for i := first; i < 512; i++ {
			if budget--; budget < 0 {
				return 0, false
			}
			e, err := k.entry(table, i)
			if err != nil || e&pagePresent == 0 {
				continue
			}
			va := base + i<<shift
			if shift == 12 || (e&pagePSE != 0 && (shift == 30 || shift == 21)) {
				return va, true
			}
			if va, ok := rec(e&mask, va, level+1); ok {
				return va, true
			}
		}
		return 0, false
	}
	return rec(k.PGD, high, 0)
}

// ReadVirt fills p with the memory at kernel virtual address va; the range
// may cross pages.
func (k *Kernel) ReadVirt(p []byte, va uint64) error {
	for len(p) > 0 {
		pa, err := k.VtoP(va)
		if err != nil {
			return err
		}
		n := min(uint64(len(p)), pageSize-va%pageSize)
		if err := k.Mem.ReadPhys(p[:n], pa); err != nil {
			return fmt.Errorf("dumpmem: virtual address %#x: %w", va, err)
		}
		p = p[n:]
		va += n
	}
	return nil
}

// ReadU64 reads the little-endian uint64 at va.
func (k *Kernel) ReadU64(va uint64) (uint64, error) {
	var b [8]byte
	err := k.ReadVirt(b[:], va)
	return binary.LittleEndian.Uint64(b[:]), err
}

// ReadU32 reads the little-endian uint32 at va.
func (k *Kernel) ReadU32(va uint64) (uint32, error) {
	var b [4]byte
	err := k.ReadVirt(b[:], va)
	return binary.LittleEndian.Uint32(b[:]), err
}

// ReadU16 reads the little-endian uint16 at va.
func (k *Kernel) ReadU16(va uint64) (uint16, error) {
	var b [2]byte
	err := k.ReadVirt(b[:], va)
	return binary.LittleEndian.Uint16(b[:]), err
}
