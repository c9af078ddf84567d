// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package vmcore owns the ELF64 core format of kernel dumps: its header,
// program headers and notes, parsed and marshalled, with the type constants
// and DUMP_ELF_INCOMPLETE. On it, it reads the crashed kernel's memory: the
// PT_LOADs, the notes (NT_PRSTATUS per CPU, VMCOREINFO), /proc/vmcore, and
// the /dev/oldmem + elfcorehdr= source of old kernels.
package vmcore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ukdump/ukdump/internal/cstr"
)

// The ELF64 core format as kernels and dump tools write it (x86_64,
// little-endian).
const (
	// Magic starts every ELF file.
	Magic = "\x7fELF"
	// EhdrSize is the size of the ELF header, PhdrSize of a program header.
	EhdrSize = 64
	PhdrSize = 56
	shdrSize = 64

	// PTLoad (PT_LOAD) is a program header of memory, PTNote (PT_NOTE) one
	// of notes.
	PTLoad = 1
	PTNote = 4

	etCore   = 4      // ET_CORE
	emX86_64 = 62     // EM_X86_64
	pnXNum   = 0xffff // PN_XNUM: e_phnum is in sh_info of section header 0

	// NTPrStatus is the note type of a CPU's saved registers (NoteCore).
	NTPrStatus = 1

	// FlagIncomplete is DUMP_ELF_INCOMPLETE in e_flags: the dump's writing
	// has not finished (makedumpfile, crash).
	FlagIncomplete = 0x1
	flagsOffset    = 48 // of e_flags in the ELF header

	// maxPhdrs bounds the program header count we accept: a real machine has
	// one PT_LOAD per RAM range; millions means a corrupt header.
	maxPhdrs = 1 << 20
	// maxNotes bounds the note segment we read into memory.
	maxNotes = 64 << 20
)

// Names of the notes of a kernel core.
const (
	// NoteCore is the name of the NT_PRSTATUS notes, one per CPU.
	NoteCore = "CORE"
	// NoteVMCoreInfo is the name of the VMCOREINFO note (type 0), whose
	// descriptor is the text ParseInfo reads.
	NoteVMCoreInfo = "VMCOREINFO"
)

// ErrFormat is wrapped by every error about a malformed core; those about a
// truncated one also wrap io.ErrUnexpectedEOF. Errors of the underlying
// reader (e.g. EIO) are wrapped as they are, without it.
var ErrFormat = errors.New("malformed ELF core")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("vmcore: %w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// readAt fills b from r at off. A short read at the end of r means the core
// is truncated; any other failure is the reader's (see readErr).
func readAt(r io.ReaderAt, b []byte, off int64, what string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	return readErr(what, off, n, len(b), err)
}

// readErr is the error of a read of want bytes at off that gave got bytes
// and err. When the input ended (io.EOF, io.ErrUnexpectedEOF, or no error
// at all) the core is truncated: the error wraps ErrFormat and
// io.ErrUnexpectedEOF. Any other error (e.g. EIO) is a read error: wrapped,
// and not ErrFormat.
func readErr(what string, off int64, got, want int, err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("vmcore: %w: %s at %#x truncated: read %d of %d bytes: %w", ErrFormat, what, off, got, want, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("vmcore: read %s at %#x: %w", what, off, err)
}

// Header is the ELF64 header: every field, so that a writer can copy a
// core's header and change only what it lays out anew.
type Header struct {
	// Ident is e_ident: Magic, class, data encoding, version, OS ABI and
	// padding.
	Ident         [16]byte
	Type, Machine uint16
	Version       uint32
	Entry         uint64
	Phoff, Shoff  uint64
	Flags         uint32
	Ehsize        uint16
	Phentsize     uint16
	// Phnum is the number of program headers: e_phnum, or with PN_XNUM the
	// sh_info of section header 0. Append writes it as e_phnum: writers
	// keep it below 0xffff.
	Phnum                      int
	Shentsize, Shnum, Shstrndx uint16
}

// NewHeader is the header of a core as the kernel lays one out, with phnum
// program headers right after it.
func NewHeader(phnum int) Header {
	h := Header{Type: etCore, Machine: emX86_64, Version: 1, Phoff: EhdrSize, Ehsize: EhdrSize, Phentsize: PhdrSize, Phnum: phnum}
	copy(h.Ident[:], Magic+"\x02\x01\x01") // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	return h
}

// Append appends the header's EhdrSize bytes to b.
func (h Header) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, h.Ident[:]...)
	b = le.AppendUint16(b, h.Type)
	b = le.AppendUint16(b, h.Machine)
	b = le.AppendUint32(b, h.Version)
	b = le.AppendUint64(b, h.Entry)
	b = le.AppendUint64(b, h.Phoff)
	b = le.AppendUint64(b, h.Shoff)
	b = le.AppendUint32(b, h.Flags)
	b = le.AppendUint16(b, h.Ehsize)
	b = le.AppendUint16(b, h.Phentsize)
	b = le.AppendUint16(b, uint16(h.Phnum))
	b = le.AppendUint16(b, h.Shentsize)
	b = le.AppendUint16(b, h.Shnum)
	return le.AppendUint16(b, h.Shstrndx)
}

// parseHeader decodes EhdrSize bytes (Phnum is e_phnum as it is).
func parseHeader(b []byte) Header {
	le := binary.LittleEndian
	h := Header{
		Type: le.Uint16(b[16:]), Machine: le.Uint16(b[18:]), Version: le.Uint32(b[20:]),
		Entry: le.Uint64(b[24:]), Phoff: le.Uint64(b[32:]), Shoff: le.Uint64(b[40:]),
		Flags: le.Uint32(b[flagsOffset:]), Ehsize: le.Uint16(b[52:]), Phentsize: le.Uint16(b[54:]),
		Phnum: int(le.Uint16(b[56:])), Shentsize: le.Uint16(b[58:]), Shnum: le.Uint16(b[60:]), Shstrndx: le.Uint16(b[62:]),
	}
	copy(h.Ident[:], b)
	return h
}

// FlagsField is e_flags as the ELF header stores it, and the file offset
// where it does: what a writer rewrites last to take FlagIncomplete back.
func FlagsField(flags uint32) (b []byte, off int64) {
	return binary.LittleEndian.AppendUint32(nil, flags), flagsOffset
}

// Phdr is an ELF64 program header.
type Phdr struct {
	Type   uint32
	Flags  uint32
	Offset uint64
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
}

// Append appends the program header's PhdrSize bytes to b.
func (p Phdr) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, p.Type)
	b = le.AppendUint32(b, p.Flags)
	for _, v := range []uint64{p.Offset, p.Vaddr, p.Paddr, p.Filesz, p.Memsz, p.Align} {
		b = le.AppendUint64(b, v)
	}
	return b
}

func parsePhdr(b []byte) Phdr {
	le := binary.LittleEndian
	return Phdr{
		Type: le.Uint32(b[0:]), Flags: le.Uint32(b[4:]), Offset: le.Uint64(b[8:]),
		Vaddr: le.Uint64(b[16:]), Paddr: le.Uint64(b[24:]), Filesz: le.Uint64(b[32:]),
		Memsz: le.Uint64(b[40:]), Align: le.Uint64(b[48:]),
	}
}

// readHeader parses the ELF header and the program headers of a core.
func readHeader(r io.ReaderAt, size int64) (Header, []Phdr, error) {
	var eh [EhdrSize]byte
	if err := readAt(r, eh[:], 0, "ELF header"); err != nil {
		return Header{}, nil, err
	}
	h := parseHeader(eh[:])
	if string(h.Ident[:4]) != Magic {
		return h, nil, formatErr("no ELF magic (got %q)", h.Ident[:4])
	}
	if h.Ident[4] != 2 || h.Ident[5] != 1 {
		return h, nil, formatErr("not ELF64 little-endian (class %d, data %d)", h.Ident[4], h.Ident[5])
	}
	if h.Type != etCore {
		return h, nil, formatErr("e_type %d is not ET_CORE (4)", h.Type)
	}
	if h.Phentsize != PhdrSize {
		return h, nil, formatErr("e_phentsize %d, want %d", h.Phentsize, PhdrSize)
	}
	if h.Phnum == pnXNum {
		// The real count is in sh_info of section header 0.
		var sh [shdrSize]byte
		if h.Shoff == 0 || h.Shoff > uint64(size) {
			return h, nil, formatErr("PN_XNUM with e_shoff %#x outside the file (%d bytes)", h.Shoff, size)
		}
		if err := readAt(r, sh[:], int64(h.Shoff), "section header 0"); err != nil {
			return h, nil, err
		}
		h.Phnum = int(binary.LittleEndian.Uint32(sh[44:]))
	}
	if h.Phnum == 0 {
		return h, nil, formatErr("no program headers")
	}
	if h.Phnum > maxPhdrs {
		return h, nil, formatErr("%d program headers (more than %d: corrupt header?)", h.Phnum, maxPhdrs)
	}
	end := h.Phoff + uint64(h.Phnum)*PhdrSize
	if h.Phoff < EhdrSize || end < h.Phoff || end > uint64(size) {
		return h, nil, formatErr("program headers [%#x, %#x) outside the file (%d bytes)", h.Phoff, end, size)
	}
	buf := make([]byte, h.Phnum*PhdrSize)
	if err := readAt(r, buf, int64(h.Phoff), "program headers"); err != nil {
		return h, nil, err
	}
	ph := make([]Phdr, h.Phnum)
	for i := range ph {
		ph[i] = parsePhdr(buf[i*PhdrSize:])
	}
	return h, ph, nil
}

// Note is one ELF note.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// walkNotes calls fn with each note of a note segment and the offset of its
// descriptor in b, until fn returns false. It stops at the end of the data
// or at a note with n_namesz == 0 (the terminator of the kernel's per-CPU
// buffers); a note that runs past the end of b is an error.
func walkNotes(b []byte, fn func(n Note, descOff int) bool) error {
	le := binary.LittleEndian
	off := uint64(0)
	for off+12 <= uint64(len(b)) {
		namesz := uint64(le.Uint32(b[off:]))
		descsz := uint64(le.Uint32(b[off+4:]))
		typ := le.Uint32(b[off+8:])
		if namesz == 0 {
			break
		}
		nameEnd := off + 12 + align4(namesz)
		end := nameEnd + align4(descsz)
		if nameEnd > uint64(len(b)) || end > uint64(len(b)) || end < nameEnd {
			return formatErr("note at %#x (namesz %d, descsz %d) runs past the end of its segment (%d bytes)", off, namesz, descsz, len(b))
		}
		n := Note{Name: cstr.String(b[off+12 : off+12+namesz]), Type: typ, Desc: b[nameEnd : nameEnd+descsz]}
		if !fn(n, int(nameEnd)) {
			break
		}
		off = end
	}
	return nil
}

// ParseNotes returns the notes of a note segment (their descriptors are
// slices of b). It stops at the end of the data or at a note with
// n_namesz == 0 (the terminator of the kernel's per-CPU buffers); at a note
// that runs past the end of b it returns the notes before it and an error
// wrapping ErrFormat.
func ParseNotes(b []byte) ([]Note, error) {
	var notes []Note
	err := walkNotes(b, func(n Note, _ int) bool { notes = append(notes, n); return true })
	return notes, err
}

// FindNote finds the first note called name in a note segment (as
// ParseNotes reads it) and returns where its descriptor is in b.
func FindNote(b []byte, name string) (descOff, descSize int, ok bool) {
	walkNotes(b, func(n Note, off int) bool { //nolint:errcheck // a note past the end is not the one looked for
		if n.Name == name {
			descOff, descSize, ok = off, len(n.Desc), true
		}
		return !ok
	})
	return descOff, descSize, ok
}

// AppendNote appends the encoding of a note to b: its header, its name
// with a NUL and its descriptor, each padded to 4 bytes.
func AppendNote(b []byte, n Note) []byte {
	le := binary.LittleEndian
	name := len(n.Name) + 1
	b = le.AppendUint32(b, uint32(name))
	b = le.AppendUint32(b, uint32(len(n.Desc)))
	b = le.AppendUint32(b, n.Type)
	b = append(b, n.Name...)
	b = append(b, make([]byte, align4(uint64(name))-uint64(name)+1)...)
	b = append(b, n.Desc...)
	return append(b, make([]byte, align4(uint64(len(n.Desc)))-uint64(len(n.Desc)))...)
}
