// Package vmcore reads the crashed kernel's memory as an ELF64 core: the
// program headers, the notes (NT_PRSTATUS per CPU, VMCOREINFO), and the
// /dev/oldmem + elfcorehdr= source of old kernels.
package vmcore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ukdump/ukdump/internal/cstr"
)

// ELF constants used by kernel cores.
const (
	ehdrSize = 64
	phdrSize = 56
	shdrSize = 64

	ptLoad = 1
	ptNote = 4
	etCore = 4
	pnXNum = 0xffff

	// NTPrStatus is the note type of a CPU's saved registers ("CORE").
	NTPrStatus = 1

	// maxPhdrs bounds the program header count we accept: a real machine has
	// one PT_LOAD per RAM range; millions means a corrupt header.
	maxPhdrs = 1 << 20
	// maxNotes bounds the note segment we read into memory.
	maxNotes = 64 << 20
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

func (p Phdr) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], p.Type)
	le.PutUint32(b[4:], p.Flags)
	le.PutUint64(b[8:], p.Offset)
	le.PutUint64(b[16:], p.Vaddr)
	le.PutUint64(b[24:], p.Paddr)
	le.PutUint64(b[32:], p.Filesz)
	le.PutUint64(b[40:], p.Memsz)
	le.PutUint64(b[48:], p.Align)
}

func getPhdr(b []byte) Phdr {
	le := binary.LittleEndian
	return Phdr{
		Type: le.Uint32(b[0:]), Flags: le.Uint32(b[4:]), Offset: le.Uint64(b[8:]),
		Vaddr: le.Uint64(b[16:]), Paddr: le.Uint64(b[24:]), Filesz: le.Uint64(b[32:]),
		Memsz: le.Uint64(b[40:]), Align: le.Uint64(b[48:]),
	}
}

// Note is one ELF note.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

// Header is the part of the ELF header a core reader needs.
type Header struct {
	Machine uint16
	Flags   uint32
	Phoff   uint64
	Phnum   int
}

// readHeader parses the ELF header and the program headers of a core.
func readHeader(r io.ReaderAt, size int64) (Header, []Phdr, error) {
	var h Header
	var eh [ehdrSize]byte
	if err := readAt(r, eh[:], 0, "ELF header"); err != nil {
		return h, nil, err
	}
	if string(eh[:4]) != "\x7fELF" {
		return h, nil, formatErr("no ELF magic (got %q)", eh[:4])
	}
	if eh[4] != 2 || eh[5] != 1 {
		return h, nil, formatErr("not ELF64 little-endian (class %d, data %d)", eh[4], eh[5])
	}
	le := binary.LittleEndian
	if t := le.Uint16(eh[16:]); t != etCore {
		return h, nil, formatErr("e_type %d is not ET_CORE (4)", t)
	}
	h.Machine = le.Uint16(eh[18:])
	h.Phoff = le.Uint64(eh[32:])
	shoff := le.Uint64(eh[40:])
	h.Flags = le.Uint32(eh[48:])
	phentsize := le.Uint16(eh[54:])
	phnum := int(le.Uint16(eh[56:]))
	if phentsize != phdrSize {
		return h, nil, formatErr("e_phentsize %d, want %d", phentsize, phdrSize)
	}
	if phnum == pnXNum {
		// The real count is in sh_info of section header 0.
		var sh [shdrSize]byte
		if shoff == 0 || shoff > uint64(size) {
			return h, nil, formatErr("PN_XNUM with e_shoff %#x outside the file (%d bytes)", shoff, size)
		}
		if err := readAt(r, sh[:], int64(shoff), "section header 0"); err != nil {
			return h, nil, err
		}
		phnum = int(le.Uint32(sh[44:]))
	}
	if phnum == 0 {
		return h, nil, formatErr("no program headers")
	}
	if phnum > maxPhdrs {
		return h, nil, formatErr("%d program headers (more than %d: corrupt header?)", phnum, maxPhdrs)
	}
	end := h.Phoff + uint64(phnum)*phdrSize
	if h.Phoff < ehdrSize || end < h.Phoff || end > uint64(size) {
		return h, nil, formatErr("program headers [%#x, %#x) outside the file (%d bytes)", h.Phoff, end, size)
	}
	h.Phnum = phnum
	buf := make([]byte, phnum*phdrSize)
	if err := readAt(r, buf, int64(h.Phoff), "program headers"); err != nil {
		return h, nil, err
	}
	ph := make([]Phdr, phnum)
	for i := range ph {
		ph[i] = getPhdr(buf[i*phdrSize:])
	}
	return h, ph, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// parseNotes walks a note segment. It stops at the end of the data or at a
// note with n_namesz == 0 (the terminator of the kernel's per-CPU buffers).
// It returns the notes and the number of bytes they occupy.
func parseNotes(b []byte) ([]Note, int, error) {
	var notes []Note
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
			return notes, int(off), formatErr("note at %#x (namesz %d, descsz %d) runs past the end of its segment (%d bytes)", off, namesz, descsz, len(b))
		}
		name := cstr.String(b[off+12 : off+12+namesz])
		notes = append(notes, Note{Name: name, Type: typ, Desc: b[nameEnd : nameEnd+descsz]})
		off = end
	}
	return notes, int(off), nil
}

// appendNote encodes a note.
func appendNote(b []byte, n Note) []byte {
	var h [12]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(n.Name)+1))
	binary.LittleEndian.PutUint32(h[4:], uint32(len(n.Desc)))
	binary.LittleEndian.PutUint32(h[8:], n.Type)
	b = append(b, h[:]...)
	name := append([]byte(n.Name), 0)
	b = append(b, name...)
	b = append(b, make([]byte, align4(uint64(len(name)))-uint64(len(name)))...)
	b = append(b, n.Desc...)
	return append(b, make([]byte, align4(uint64(len(n.Desc)))-uint64(len(n.Desc)))...)
}
