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

	mu     sync.Mutex
	win    []byte
	winOff int64
	// Mmap is false once mapping failed (or where there is no mmap); reads
	// then use pread.
	Mmap bool
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
