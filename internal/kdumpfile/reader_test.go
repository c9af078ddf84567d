// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// smallDump is a valid dump of a small core, for corrupting.
func smallDump(t testing.TB, codec Codec, level int) []byte {
	t.Helper()
	tc := newTestCore(t, 8, [][2]uint64{{0x1000, 0x6000}, {0x9000, 0x1800}})
	var f memFile
	if err := tc.writeDump(t, &f, Params{Codec: codec, DumpLevel: level}, tc.present); err != nil {
		t.Fatalf("writing the dump: %v", err)
	}
	return f.b
}

func TestOpenErrors(t *testing.T) {
	good := smallDump(t, CodecZlib, 1)
	le := binary.LittleEndian
	patch := func(off int, f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b[off:])
		return b
	}
	put32 := func(off int, v uint32) []byte { return patch(off, func(b []byte) { le.PutUint32(b, v) }) }
	put64 := func(off int, v uint64) []byte { return patch(off, func(b []byte) { le.PutUint64(b, v) }) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"short header", good[:100], ErrFormat},
		{"bad signature", patch(0, func(b []byte) { copy(b, "DISKDUMP") }), ErrFormat},
		{"version 0", put32(8, 0), ErrFormat},
		{"block size not a power of two", put32(428, 4000), ErrFormat},
		{"block size huge", put32(428, 1<<30), ErrFormat},
		{"sub_hdr_size 0", put32(432, 0), ErrFormat},
		{"max_mapnr 0", put64(4096+96, 0), ErrFormat},
		{"max_mapnr huge", put64(4096+96, 1<<50), ErrFormat},
		{"bitmaps too small", put32(436, 0), ErrFormat},
		{"bitmaps past the end", put32(436, 1<<30), ErrFormat},
		{"split file", put32(4096+12, 1), ErrFormat},
		{"notes past the end", put64(4096+48, 1<<40), ErrFormat},
		{"notes negative", put64(4096+48, 1<<63), ErrFormat},
		{"notes huge", put64(4096+56, 1<<40), ErrFormat},
		{"vmcoreinfo past the end", put64(4096+32, 1<<40), ErrFormat},
		{"truncated in the bitmaps", good[:2*4096+10], ErrFormat},
		{"flattened", append([]byte("makedumpfile\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"), make([]byte, 4096)...), ErrFlattened},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadPageErrors(t *testing.T) {
	good := smallDump(t, CodecZlib, 0)
	kf, err := Open(bytes.NewReader(good))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	first, _ := kf.Dumpable().NextSet(0)
	d, err := kf.PageDesc(first)
	if err != nil {
		t.Fatalf("PageDesc = %v", err)
	}
	descAt := bytes.Index(good, func() []byte { b := make([]byte, 24); d.put(b); return b }())
	le := binary.LittleEndian
	patch := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b[descAt:])
		return b
	}
	tests := []struct {
		name string
		in   []byte
		pfn  uint64
		buf  int
		want error
	}{
		{"excluded", good, 0, 4096, ErrExcluded},
		{"beyond max_mapnr", good, 1 << 20, 4096, ErrExcluded},
		{"small buffer", good, first, 100, nil},
		{"offset 0", patch(func(b []byte) { le.PutUint64(b, 0) }), first, 4096, ErrIncomplete},
		{"size 0", patch(func(b []byte) { le.PutUint32(b[8:], 0) }), first, 4096, ErrFormat},
		{"size too big", patch(func(b []byte) { le.PutUint32(b[8:], 5000) }), first, 4096, ErrFormat},
		{"data past the end", patch(func(b []byte) { le.PutUint64(b, 1<<40) }), first, 4096, ErrFormat},
		{"bad flags", patch(func(b []byte) { le.PutUint32(b[12:], 0x40) }), first, 4096, ErrFormat},
		{"wrong codec", patch(func(b []byte) { le.PutUint32(b[12:], FlagSnappy) }), first, 4096, ErrFormat},
		{"descriptors cut off", good[:descAt+10], first, 4096, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf, err := Open(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			err = kf.ReadPage(tt.pfn, make([]byte, tt.buf))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("ReadPage(%#x) = %v, want %v", tt.pfn, err, tt.want)
			}
		})
	}
}

// tinyDump is a dump with 512-byte blocks: small seeds fuzz faster (and
// minimize in reasonable time).
func tinyDump(t testing.TB, codec Codec, level int) []byte {
	t.Helper()
	const bs = 512
	present := bitmap.New(24)
	present.SetRange(2, 11)
	present.SetRange(16, 23)
	dumpable := present.Clone()
	dumpable.Clear(5)
	notes := vmcore.AppendNote(nil, vmcore.Note{Name: vmcore.NoteVMCoreInfo, Desc: []byte("OSRELEASE=6.1.0-fuzz\nPAGESIZE=512\n")})
	var f memFile
	p := Params{Notes: notes, PageSize: bs, Codec: codec, DumpLevel: level, Utsname: Utsname{Release: "6.1.0-fuzz"}}
	w, err := NewWriter(&f, p, present, dumpable)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	c, err := NewCompressor(codec, bs)
	if err != nil {
		t.Fatalf("NewCompressor = %v", err)
	}
	pages := testPages(bs)
	kinds := []string{"zero", "text", "random", "sparse", "mixed"}
	for pfn, ok := dumpable.NextSet(0); ok; pfn, ok = dumpable.NextSet(pfn + 1) {
		page := pages[kinds[pfn%uint64(len(kinds))]]
		out, flags := c.Compress(nil, page)
		if err := w.WritePage(pfn, out, flags, isZero(page)); err != nil {
			t.Fatalf("WritePage = %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return f.b
}

func TestTinyDump(t *testing.T) {
	for _, codec := range Codecs {
		kf, err := Open(bytes.NewReader(tinyDump(t, codec, 1)))
		if err != nil {
			t.Fatalf("Open(%s) = %v", codec, err)
		}
		buf := make([]byte, 512)
		for pfn, ok := kf.Dumpable().NextSet(0); ok; pfn, ok = kf.Dumpable().NextSet(pfn + 1) {
			if err := kf.ReadPage(pfn, buf); err != nil {
				t.Errorf("%s: ReadPage(%d) = %v", codec, pfn, err)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	for _, codec := range Codecs {
		f.Add(tinyDump(f, codec, 1))
	}
	good := tinyDump(f, CodecZlib, 0)
	f.Add(good)
	f.Add(good[:len(good)-100])
	f.Fuzz(func(t *testing.T, in []byte) {
		kf, err := Open(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrFlattened) {
				t.Fatalf("Open = %v, want an ErrFormat", err)
			}
			return
		}
		defer kf.Close()
		buf := make([]byte, kf.PageSize())
		n := 0
		for pfn, ok := kf.Dumpable().NextSet(0); ok && n < 256; pfn, ok = kf.Dumpable().NextSet(pfn + 1) {
			kf.ReadPage(pfn, buf) //nolint:errcheck // any error is fine, a panic is not
			n++
		}
		kf.ReadPage(kf.MaxPFN(), buf) //nolint:errcheck
	})
}
