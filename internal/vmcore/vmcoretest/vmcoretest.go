// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package vmcoretest builds synthetic kernel cores for tests.
package vmcoretest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// Info is a VMCOREINFO text like a 6.1 kernel's (trimmed).
const Info = "OSRELEASE=6.1.0-test-amd64\nBUILD-ID=0123456789abcdef\nPAGESIZE=4096\n" +
	"SYMBOL(init_uts_ns)=ffffffff8d7fb100\nSYMBOL(_stext)=ffffffff8bc00000\n" +
	"NUMBER(SECTION_SIZE_BITS)=27\nOFFSET(page.flags)=0\nSIZE(page)=64\nLENGTH(mem_section)=4096\n" +
	"KERNELOFFSET=a000000\nCRASHTIME=1763894096\n"

// Core describes a synthetic core.
type Core struct {
	// Info is the VMCOREINFO text (default Info).
	Info string
	// CPUs is the number of NT_PRSTATUS notes (default 2).
	CPUs int
	// Segments are the physical ranges as (paddr, size) pairs
	// (default: 1 MiB at 0x100000 and 3 MiB at 0x10000000).
	Segments [][2]uint64
	// Seed fills memory with pseudo-random bytes (and some zero pages).
	Seed uint64
}

// Build returns the core as a ReaderAt with its size.
func (c Core) Build() (*vmcore.Image, error) {
	if c.Info == "" {
		c.Info = Info
	}
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.Segments == nil {
		c.Segments = [][2]uint64{{0x100000, 1 << 20}, {0x10000000, 3 << 20}}
	}
	var notes []vmcore.Note
	for i := 0; i < c.CPUs; i++ {
		d := make([]byte, 336)
		d[32] = byte(i + 1) // pr_pid
		notes = append(notes, vmcore.Note{Name: vmcore.NoteCore, Type: vmcore.NTPrStatus, Desc: d})
	}
	notes = append(notes, vmcore.Note{Name: vmcore.NoteVMCoreInfo, Desc: []byte(c.Info)})
	rng := rand.New(rand.NewPCG(c.Seed, 1))
	var segs []vmcore.Segment
	for _, s := range c.Segments {
		mem := make([]byte, s[1])
		for p := 0; p < len(mem); p += 4096 {
			if rng.IntN(4) == 0 {
				continue // a zero page
			}
			for i := p; i < min(p+4096, len(mem)); i += 8 {
				v := rng.Uint64()
				for j := 0; j < 8 && i+j < len(mem); j++ {
					mem[i+j] = byte(v >> (8 * j))
				}
			}
		}
		segs = append(segs, vmcore.Segment{Vaddr: 0xffff888000000000 + s[0], Paddr: s[0], Filesz: s[1], Memsz: s[1], Src: bytes.NewReader(mem)})
	}
	return vmcore.NewImage(notes, segs, vmcore.DefaultPageSize), nil
}

// WriteFile writes the core to path.
func (c Core) WriteFile(path string) (*vmcore.Image, error) {
	im, err := c.Build()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, io.NewSectionReader(im, 0, im.Size())); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return im, f.Close()
}

// Oldmem builds a fake physical memory with the kernel's elfcorehdr
// layout: one PT_NOTE per CPU buffer (terminated, larger than its content),
// the VMCOREINFO note, and PT_LOADs whose p_offset is the physical address:
// 0x80000 bytes at 0x100000 and 0x200000 bytes at 0x300800. It returns the
// memory and the address of the ELF header (elfcorehdr=).
func Oldmem() (mem []byte, hdr uint64) {
	mem = make([]byte, 8<<20)
	for i := range mem {
		mem[i] = byte(i*7 + i>>12)
	}
	note := func(at int, name string, typ uint32, desc []byte) {
		clear(mem[at : at+4096])
		copy(mem[at:], vmcore.AppendNote(nil, vmcore.Note{Name: name, Type: typ, Desc: desc}))
		// followed by a zero note header: the terminator
	}
	prs := make([]byte, 336)
	prs[0] = 0xaa
	note(0x10000, vmcore.NoteCore, vmcore.NTPrStatus, prs)
	note(0x11000, vmcore.NoteCore, vmcore.NTPrStatus, prs)
	note(0x12000, vmcore.NoteVMCoreInfo, 0, []byte(Info))

	hdr = 0x20000
	clear(mem[hdr : hdr+4096])
	phs := []vmcore.Phdr{
		{Type: vmcore.PTNote, Offset: 0x10000, Paddr: 0x10000, Filesz: 1024, Memsz: 1024},
		{Type: vmcore.PTNote, Offset: 0x11000, Paddr: 0x11000, Filesz: 1024, Memsz: 1024},
		{Type: vmcore.PTNote, Offset: 0x12000, Paddr: 0x12000, Filesz: 4096, Memsz: 4096},
		{Type: vmcore.PTLoad, Offset: 0x100000, Paddr: 0x100000, Vaddr: 0xffffffff81000000, Filesz: 0x80000, Memsz: 0x80000},
		{Type: vmcore.PTLoad, Offset: 0x300800, Paddr: 0x300800, Vaddr: 0xffff888000300800, Filesz: 0x200000, Memsz: 0x200000},
	}
	hb := vmcore.NewHeader(len(phs)).Append(nil)
	for _, p := range phs {
		hb = p.Append(hb)
	}
	copy(mem[hdr:], hb)
	return mem, hdr
}
