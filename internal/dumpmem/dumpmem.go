// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package dumpmem reads the crashed kernel's memory from a dump by physical
// and kernel virtual address.
package dumpmem

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// ErrNotInDump is wrapped by the errors for memory the dump does not hold:
// outside every PT_LOAD, or a page excluded from a kdump-compressed file.
var ErrNotInDump = errors.New("memory not in the dump")

// Mem is the crashed kernel's physical memory as a dump holds it.
type Mem interface {
	// ReadPhys fills p with the memory at physical address paddr. It
	// returns an error wrapping ErrNotInDump when part of the range is not
	// in the dump.
	ReadPhys(p []byte, paddr uint64) error
}

type elfMem struct {
	r     io.ReaderAt
	loads []vmcore.Phdr // sorted by Paddr
}

// FromELF reads physical memory from an ELF core by the p_paddr of its
// PT_LOAD segments. Bytes past p_filesz (up to p_memsz) read as zeros.
func FromELF(r io.ReaderAt, c *vmcore.Core) Mem {
	loads := slices.Clone(c.Loads)
	slices.SortStableFunc(loads, func(a, b vmcore.Phdr) int {
		switch {
		case a.Paddr < b.Paddr:
			return -1
		case a.Paddr > b.Paddr:
			return 1
		}
		return 0
	})
	return &elfMem{r: r, loads: loads}
}

func (m *elfMem) find(paddr uint64) (vmcore.Phdr, bool) {
	i, _ := slices.BinarySearchFunc(m.loads, paddr, func(p vmcore.Phdr, a uint64) int {
		if p.Paddr <= a {
			return -1
		}
		return 1
	})
	// loads[i-1] is the last segment starting at or below paddr; earlier
	// ones may overlap, so look back over a few.
	for j := i - 1; j >= 0 && j >= i-4; j-- {
		p := m.loads[j]
		if paddr-p.Paddr < p.Memsz {
			return p, true
		}
	}
	return vmcore.Phdr{}, false
}

func (m *elfMem) ReadPhys(p []byte, paddr uint64) error {
	for len(p) > 0 {
		ph, ok := m.find(paddr)
		if !ok {
			return fmt.Errorf("dumpmem: physical address %#x: %w", paddr, ErrNotInDump)
		}
		off := paddr - ph.Paddr
		n := min(uint64(len(p)), ph.Memsz-off)
		chunk := p[:n]
		if off < ph.Filesz {
			f := min(n, ph.Filesz-off)
			if got, err := m.r.ReadAt(chunk[:f], int64(ph.Offset+off)); uint64(got) < f {
				if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					// The file ends before its PT_LOAD does.
					return fmt.Errorf("dumpmem: physical address %#x: %w: data at file offset %#x truncated: read %d of %d bytes: %w",
						paddr, vmcore.ErrFormat, ph.Offset+off, got, f, io.ErrUnexpectedEOF)
				}
				return fmt.Errorf("dumpmem: physical address %#x: read %d bytes at file offset %#x: %w", paddr, f, ph.Offset+off, err)
			}
			clear(chunk[f:])
		} else {
			clear(chunk)
		}
		p = p[n:]
		paddr += n
	}
	return nil
}

type kdumpMem struct {
	f  *kdumpfile.File
	ps uint64

	mu   sync.Mutex
	pfn  uint64
	page []byte // the last page read; nil if none
}

// FromKdump reads physical memory from a kdump-compressed file, page by
// page (the last page read is cached).
func FromKdump(f *kdumpfile.File) Mem {
	return &kdumpMem{f: f, ps: uint64(f.PageSize())}
}

func (m *kdumpMem) ReadPhys(p []byte, paddr uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(p) > 0 {
		pfn, off := paddr/m.ps, paddr%m.ps
		if m.page == nil || m.pfn != pfn {
			if m.page == nil {
				m.page = make([]byte, m.ps)
			}
			if err := m.f.ReadPage(pfn, m.page); err != nil {
				m.page = nil
				if errors.Is(err, kdumpfile.ErrExcluded) || errors.Is(err, kdumpfile.ErrIncomplete) {
					return fmt.Errorf("dumpmem: physical address %#x: %w: %w", paddr, ErrNotInDump, err)
				}
				return fmt.Errorf("dumpmem: physical address %#x: %w", paddr, err)
			}
			m.pfn = pfn
		}
		n := copy(p, m.page[off:])
		p = p[n:]
		paddr += uint64(n)
	}
	return nil
}
