// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/cstr"
)

// Core is a parsed ELF core: its headers, notes and VMCOREINFO.
type Core struct {
	Header Header
	Phdrs  []Phdr
	// Loads are the PT_LOAD segments in header order.
	Loads []Phdr
	// Notes are all notes of all PT_NOTE segments.
	Notes []Note
	// NoteBytes are the PT_NOTE segments as the file holds them, one after
	// the other: what a dump writer copies verbatim.
	NoteBytes []byte
	// Info is VMCOREINFO, or nil when the core has none.
	Info *Info
	// Size is the size of the file the core was read from.
	Size int64
	// Truncated is how many bytes of PT_LOAD data lie past the end of the
	// file (OpenPartial only): a dump whose writing stopped.
	Truncated uint64
}

// Open parses the ELF core in r (size bytes long). A malformed or truncated
// core gives an error wrapping ErrFormat; a failed read, one wrapping the
// reader's error.
func Open(r io.ReaderAt, size int64) (*Core, error) { return open(r, size, false) }

// OpenPartial is Open for a core whose writing may have stopped part-way (a
// vmcore.incomplete): a PT_LOAD that runs past the end of the file is cut
// to what the file holds, in p_filesz and p_memsz alike (the missing memory
// is absent, not zeros), and Core.Truncated counts the bytes cut.
func OpenPartial(r io.ReaderAt, size int64) (*Core, error) { return open(r, size, true) }

func open(r io.ReaderAt, size int64, partial bool) (*Core, error) {
	h, ph, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	c := &Core{Header: h, Phdrs: ph, Size: size}
	for i, p := range ph {
		end := p.Offset + p.Filesz
		if p.Type != PTLoad && p.Type != PTNote {
			continue
		}
		if partial && p.Type == PTLoad && end >= p.Offset && end > uint64(size) {
			have := uint64(max(size, 0)) - min(p.Offset, uint64(max(size, 0)))
			c.Truncated += p.Filesz - have
			p.Filesz, p.Memsz = have, min(p.Memsz, have)
			end = p.Offset + p.Filesz
			if p.Filesz == 0 {
				continue // nothing of it in the file
			}
		}
		if end < p.Offset || end > uint64(size) {
			return nil, formatErr("program header %d (type %d): file range [%#x, %#x) outside the file (%d bytes)", i, p.Type, p.Offset, end, size)
		}
		switch p.Type {
		case PTLoad:
			if p.Filesz > p.Memsz {
				return nil, formatErr("PT_LOAD %d: p_filesz %#x > p_memsz %#x", i, p.Filesz, p.Memsz)
			}
			c.Loads = append(c.Loads, p)
		case PTNote:
			if p.Filesz > maxNotes {
				return nil, formatErr("PT_NOTE %d: %d bytes (more than %d: corrupt header?)", i, p.Filesz, maxNotes)
			}
			buf := make([]byte, p.Filesz)
			if err := readAt(r, buf, int64(p.Offset), fmt.Sprintf("PT_NOTE %d", i)); err != nil {
				return nil, err
			}
			notes, err := ParseNotes(buf)
			if err != nil {
				return nil, fmt.Errorf("PT_NOTE %d: %w", i, err)
			}
			c.Notes = append(c.Notes, notes...)
			c.NoteBytes = append(c.NoteBytes, buf...)
		}
	}
	for _, n := range c.Notes {
		if n.Name == NoteVMCoreInfo {
			c.Info = ParseInfo(n.Desc)
			break
		}
	}
	return c, nil
}

// CPUs returns the number of NT_PRSTATUS notes: the CPUs whose registers were saved.
func (c *Core) CPUs() int {
	n := 0
	for _, no := range c.Notes {
		if no.Name == NoteCore && no.Type == NTPrStatus {
			n++
		}
	}
	return n
}

// MemoryBytes is the sum of the PT_LOAD file sizes: the memory image in the core.
func (c *Core) MemoryBytes() int64 {
	var n int64
	for _, p := range c.Loads {
		n += int64(p.Filesz)
	}
	return n
}

// Info is the parsed VMCOREINFO note: the kernel's description of itself for
// dump tools ("KEY=VALUE" lines).
type Info struct {
	// Raw is the note text as the kernel wrote it.
	Raw    string
	Values map[string]string
}

// ParseInfo parses VMCOREINFO text. Lines without '=' are ignored; the text
// ends at the first NUL.
func ParseInfo(b []byte) *Info {
	in := &Info{Raw: cstr.String(b), Values: map[string]string{}}
	for _, line := range strings.Split(in.Raw, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && k != "" {
			in.Values[k] = v
		}
	}
	return in
}

// OSRelease is the crashed kernel's release (OSRELEASE=), or "".
func (in *Info) OSRelease() string { return in.Values["OSRELEASE"] }

// PageSize is PAGESIZE=, or 0 when absent or malformed.
func (in *Info) PageSize() int64 {
	v, _ := strconv.ParseInt(in.Values["PAGESIZE"], 10, 64)
	return v
}

// CrashTime is CRASHTIME= (set at panic time), if present.
func (in *Info) CrashTime() (time.Time, bool) {
	v, err := strconv.ParseInt(in.Values["CRASHTIME"], 10, 64)
	if err != nil || v <= 0 {
		return time.Time{}, false
	}
	return time.Unix(v, 0).UTC(), true
}

// Symbol is SYMBOL(name)= as an address.
func (in *Info) Symbol(name string) (uint64, bool) { return in.hex("SYMBOL(" + name + ")") }

// KernelOffset is KERNELOFFSET= (the KASLR shift).
func (in *Info) KernelOffset() (uint64, bool) { return in.hex("KERNELOFFSET") }

// Number is NUMBER(name)=.
func (in *Info) Number(name string) (int64, bool) { return in.dec("NUMBER(" + name + ")") }

// Offset is OFFSET(name)=, e.g. Offset("page.flags").
func (in *Info) Offset(name string) (int64, bool) { return in.dec("OFFSET(" + name + ")") }

// SizeOf is SIZE(name)=.
func (in *Info) SizeOf(name string) (int64, bool) { return in.dec("SIZE(" + name + ")") }

// Length is LENGTH(name)=.
func (in *Info) Length(name string) (int64, bool) { return in.dec("LENGTH(" + name + ")") }

func (in *Info) hex(k string) (uint64, bool) {
	v, err := strconv.ParseUint(in.Values[k], 16, 64)
	return v, err == nil
}

func (in *Info) dec(k string) (int64, bool) {
	v, err := strconv.ParseInt(in.Values[k], 10, 64)
	return v, err == nil
}
