// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Reads that take turns among a few places map each place's window once;
// a place more evicts the least recently used window.
func TestFileWindows(t *testing.T) {
	const size = 6 * WindowSize
	data := make([]byte, size)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(data[i:], uint64(i))
	}
	name := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := func(off int64, n int) {
		t.Helper()
		b := make([]byte, n)
		if m, err := f.ReadAt(b, off); err != nil || m != n || !bytes.Equal(b, data[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes at %#x) = %d, %v, or wrong bytes", n, off, m, err)
		}
	}
	// Struct pages, page tables, mem_section, page data: four places.
	places := []int64{0, 2*WindowSize + 100, 4*WindowSize + 8, 5*WindowSize + 4000}
	for round := 0; round < 50; round++ {
		for _, p := range places {
			read(p+int64(round*64), 512)
		}
	}
	if !f.Mmap || f.maps != len(places) {
		t.Fatalf("four places read in turn mapped %d windows (mmap %v), want 4", f.maps, f.Mmap)
	}
	read(3*WindowSize, 64) // a fifth: evicts the first place's window
	read(places[3], 64)    // the most recent stays
	read(places[0], 64)    // the evicted one comes back
	if f.maps != 6 {
		t.Errorf("after a fifth place: %d windows mapped, want 6", f.maps)
	}
	read(WindowSize-100, 300) // across two windows
	read(size-10, 10)
	if n, err := f.ReadAt(make([]byte, 20), size-10); n != 10 || err == nil {
		t.Errorf("ReadAt past the end = %d, %v; want 10, EOF", n, err)
	}
}
