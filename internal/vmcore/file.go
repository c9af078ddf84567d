// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"os"
	"sync"
)

// File reads a core file: through mmap windows on Linux (falling back to
// pread when the file cannot be mapped), with pread elsewhere.
type File struct {
	f    *os.File
	size int64

	mu sync.Mutex
	// wins are the mapped windows, the most recently used first. A dump
	// reads from a few places in turn (struct pages, page tables,
	// mem_section, the page data), and under TCG one 4 MiB mapping of
	// /proc/vmcore costs about 4 ms: with one window the mem_map walk of
	// a 64 GiB machine remapped 144 times per 4 GiB of RAM (10 s in all).
	wins [mapWindows]window
	maps int // windows mapped so far (tests)
	// Mmap is false once mapping failed (or where there is no mmap); reads
	// then use pread.
	Mmap bool
}

// mapWindows is how many mmap windows a File keeps.
const mapWindows = 4

type window struct {
	b   []byte
	off int64
	// pins counts the views (View) of the window not yet released: a
	// pinned window is never unmapped.
	pins int
}

// OpenFile opens a core file (e.g. /proc/vmcore) for reading.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{f: f, size: fi.Size(), Mmap: canMmap}, nil
}

// Size is the file's size.
func (f *File) Size() int64 { return f.size }

// Name is the file's path.
func (f *File) Name() string { return f.f.Name() }
