// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ukdump/ukdump/internal/bitmap"
)

// A file written window by window, both ways (bitmaps written as they come
// after SetDumpable; or all first, again from pfn 0 once, then read back),
// equals one written from whole bitmaps; pages out of their window are
// refused.
func TestWindowWriter(t *testing.T) {
	const maxPFN = 3*32768 + 100
	present, dumpable := bitmap.New(maxPFN), bitmap.New(maxPFN)
	present.SetRange(10, maxPFN-3)
	for pfn := uint64(0); pfn < maxPFN; pfn += 7 {
		if present.Get(pfn) {
			dumpable.Set(pfn)
		}
	}
	page := bytes.Repeat([]byte{0x5a}, testPageSize)
	p := Params{MaxPFN: maxPFN, DumpLevel: 1}
	var whole memFile
	w, err := NewWriter(&whole, p, present, dumpable)
	if err != nil {
		t.Fatal(err)
	}
	writeAll := func(w *Writer, from, to uint64) {
		for pfn, ok := dumpable.NextSet(from); ok && pfn < to; pfn, ok = dumpable.NextSet(pfn + 1) {
			if err := w.WritePage(pfn, page, 0, pfn%3 == 0); err != nil {
				t.Fatalf("WritePage(%#x) = %v", pfn, err)
			}
		}
	}
	writeAll(w, 0, maxPFN)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	win := func(b *bitmap.Bitmap, start, end uint64) *bitmap.Bitmap {
		r := bitmap.NewRange(start, end)
		for pfn := start; pfn < end; pfn++ {
			if b.Get(pfn) {
				r.Set(pfn)
			}
		}
		return r
	}
	windows := [][2]uint64{{0, 32768}, {32768, 65536}, {65536, maxPFN}}
	for _, readBack := range []bool{false, true} {
		var f memFile
		w, err := NewWindowWriter(&f, p)
		if err != nil {
			t.Fatal(err)
		}
		if readBack {
			for _, ws := range append(windows[:1:1], windows...) { // window 0 twice: a walk done again
				if err := w.WriteBitmaps(win(present, ws[0], ws[1]), win(dumpable, ws[0], ws[1])); err != nil {
					t.Fatalf("WriteBitmaps(%#x) = %v", ws[0], err)
				}
			}
		}
		if err := w.SetDumpable(dumpable.Count()); err != nil {
			t.Fatal(err)
		}
		for i, ws := range windows {
			d := win(dumpable, ws[0], ws[1])
			if readBack {
				d = bitmap.NewRange(ws[0], ws[1])
				err = w.ReadWindow(&f, d)
			} else {
				err = w.WriteBitmaps(win(present, ws[0], ws[1]), d)
			}
			if err != nil {
				t.Fatalf("window %d: %v", i, err)
			}
			if i == 1 {
				if err := w.WritePage(ws[1]+7, page, 0, false); !errors.Is(err, ErrOrder) {
					t.Errorf("WritePage past the window = %v, want ErrOrder", err)
				}
			}
			writeAll(w, ws[0], ws[1])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.b, whole.b) {
			t.Errorf("read back %v: %d bytes, differing from the file written from whole bitmaps (%d bytes)", readBack, len(f.b), len(whole.b))
		}
	}
	// A window whose pages are not all written before the next.
	var f memFile
	w, _ = NewWindowWriter(&f, p)
	w.SetDumpable(dumpable.Count())
	w.WriteBitmaps(win(present, 0, 32768), win(dumpable, 0, 32768))
	if err := w.WriteBitmaps(win(present, 32768, 65536), win(dumpable, 32768, 65536)); !errors.Is(err, ErrOrder) {
		t.Errorf("the next window before the last one's pages = %v, want ErrOrder", err)
	}
}
