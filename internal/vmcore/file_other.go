//go:build !linux

package vmcore

import (
	"os"
)

// File reads a core file; off Linux it has no mmap windows, only pread.
type File struct {
	f    *os.File
	size int64
	// Mmap is always false here.
	Mmap bool
}

// OpenFile opens a core file for reading.
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
	return &File{f: f, size: fi.Size()}, nil
}

// Size is the file's size.
func (f *File) Size() int64 { return f.size }

// Name is the file's path.
func (f *File) Name() string { return f.f.Name() }

// ReadAt reads with pread.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
