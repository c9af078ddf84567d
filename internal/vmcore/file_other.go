//go:build !linux

package vmcore

const canMmap = false

// ReadAt reads with pread.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
