// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// What Open parses marshals back to the bytes it was read from: the
// header, the program headers and the notes.
func TestELFRoundTrip(t *testing.T) {
	im, err := vmcoretest.Core{CPUs: 3}.Build()
	if err != nil {
		t.Fatal(err)
	}
	file := readAll(t, im, im.Size())
	// Fields a writer copies from its source, whatever they hold.
	le := binary.LittleEndian
	file[8] = 3                         // EI_OSABI
	le.PutUint64(file[24:], 0xdeadbeef) // e_entry
	le.PutUint32(file[48:], 0x80)       // e_flags
	le.PutUint16(file[58:], 64)         // e_shentsize
	c, err := vmcore.Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	head := c.Header.Append(nil)
	for _, p := range c.Phdrs {
		head = p.Append(head)
	}
	if n := vmcore.EhdrSize + len(c.Phdrs)*vmcore.PhdrSize; !bytes.Equal(head, file[:n]) {
		t.Errorf("Header.Append + Phdr.Append = %x, want the file's first %d bytes %x", head, n, file[:n])
	}
	note := c.Phdrs[0]
	if !bytes.Equal(c.NoteBytes, file[note.Offset:note.Offset+note.Filesz]) {
		t.Errorf("NoteBytes differ from the PT_NOTE segment")
	}
	var again []byte
	for _, n := range c.Notes {
		again = vmcore.AppendNote(again, n)
	}
	if !bytes.Equal(again, c.NoteBytes) {
		t.Errorf("AppendNote of the parsed notes differs from the segment")
	}
	off, size, ok := vmcore.FindNote(c.NoteBytes, vmcore.NoteVMCoreInfo)
	if !ok || string(c.NoteBytes[off:off+size]) != c.Info.Raw {
		t.Errorf("FindNote(VMCOREINFO) = %d, %d, %v; want the VMCOREINFO text", off, size, ok)
	}
	if _, _, ok := vmcore.FindNote(c.NoteBytes, "XEN"); ok {
		t.Errorf("FindNote(XEN) ok = true")
	}
	b, at := vmcore.FlagsField(c.Header.Flags | vmcore.FlagIncomplete)
	if at != 48 || le.Uint32(b) != 0x81 {
		t.Errorf("FlagsField(0x81) = %x at %d, want e_flags 0x81 at 48", b, at)
	}
}

func TestParseNotes(t *testing.T) {
	a := vmcore.Note{Name: vmcore.NoteCore, Type: vmcore.NTPrStatus, Desc: []byte{1, 2, 3, 4, 5}}
	b := vmcore.Note{Name: "LINUX", Type: 0x10, Desc: nil}
	seg := vmcore.AppendNote(vmcore.AppendNote(nil, a), b)
	terminated := append(bytes.Clone(seg), make([]byte, 24)...)
	for _, tt := range []struct {
		name string
		b    []byte
		want []vmcore.Note
		err  error
	}{
		{"two", seg, []vmcore.Note{a, {Name: "LINUX", Type: 0x10, Desc: []byte{}}}, nil},
		{"terminator", terminated, []vmcore.Note{a, {Name: "LINUX", Type: 0x10, Desc: []byte{}}}, nil},
		{"cut", seg[:len(seg)-2], []vmcore.Note{a}, vmcore.ErrFormat},
		{"empty", nil, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vmcore.ParseNotes(tt.b)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("ParseNotes error = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNotes (-want, +got):\n%s", diff)
			}
		})
	}
}
