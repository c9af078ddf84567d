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

// testFile opens a file of size bytes, each 8 its own offset, and returns
// it (closed at the test's end) and its bytes.
func testFile(t *testing.T, size int) (*File, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := 0; i+8 <= size; i += 8 {
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
	t.Cleanup(func() { f.Close() })
	return f, data
}

// Reads that take turns among a few places map each place's window once;
// a place more evicts the least recently used window.
func TestFileWindows(t *testing.T) {
	const size = 6 * WindowSize
	f, data := testFile(t, size)
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

// A view pins its window: reads elsewhere evict only unpinned windows, go
// around the windows when all are pinned, and a released window can go.
func TestFileView(t *testing.T) {
	const size = 6 * WindowSize
	f, data := testFile(t, size)
	if _, _, ok := f.View(WindowSize-100, 200); ok {
		t.Error("View across two windows: ok, want not")
	}
	if _, _, ok := f.View(size-100, 200); ok {
		t.Error("View past the end: ok, want not")
	}
	var releases []func()
	for w := int64(0); w < mapWindows; w++ {
		off := w*WindowSize + 4096
		b, release, ok := f.View(off, 8192)
		if !ok || !bytes.Equal(b, data[off:off+8192]) || cap(b) != 8192 {
			t.Fatalf("View(%#x, 8192) = %d bytes (cap %d), ok %v, or wrong bytes", off, len(b), cap(b), ok)
		}
		releases = append(releases, release)
	}
	maps := f.maps
	b := make([]byte, 64)
	off := int64(5 * WindowSize)
	if n, err := f.ReadAt(b, off); err != nil || n != 64 || !bytes.Equal(b, data[off:off+64]) {
		t.Fatalf("ReadAt with every window pinned = %d, %v, or wrong bytes", n, err)
	}
	if f.maps != maps || !f.Mmap {
		t.Fatalf("ReadAt with every window pinned mapped %d windows (mmap %v), want none and mmap kept", f.maps-maps, f.Mmap)
	}
	if _, _, ok := f.View(off, 64); ok {
		t.Error("View with every window pinned: ok, want not")
	}
	releases[1]()
	releases[1]() // twice: no effect
	if n, err := f.ReadAt(b, off); err != nil || n != 64 || !bytes.Equal(b, data[off:off+64]) {
		t.Fatalf("ReadAt after a release = %d, %v, or wrong bytes", n, err)
	}
	if f.maps != maps+1 {
		t.Fatalf("ReadAt after a release mapped %d windows, want 1 (in the released one's place)", f.maps-maps)
	}
	for w, release := range releases {
		if w == 1 {
			continue
		}
		// The pinned windows stayed: their views still read.
		o := int64(w)*WindowSize + 4096
		if n, err := f.ReadAt(b, o); err != nil || n != 64 || !bytes.Equal(b, data[o:o+64]) || f.maps != maps+1 {
			t.Fatalf("ReadAt in pinned window %d = %d, %v (maps %d), want no remap", w, n, err, f.maps-maps)
		}
		release()
	}
}
