// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

const canMmap = true

// ReadAt reads from the current window, mapping a new one when needed.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for n < len(p) && off+int64(n) < f.size {
		pos := off + int64(n)
		if !f.Mmap {
			m, err := f.f.ReadAt(p[n:], pos)
			return n + m, err
		}
		if f.win == nil || pos < f.winOff || pos >= f.winOff+int64(len(f.win)) {
			if err := f.remap(pos); err != nil {
				f.Mmap = false
				continue
			}
		}
		n += copy(p[n:], f.win[pos-f.winOff:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *File) remap(pos int64) error {
	if f.win != nil {
		if err := unix.Munmap(f.win); err != nil {
			return fmt.Errorf("munmap %s: %w", f.f.Name(), err)
		}
		f.win = nil
	}
	start := pos &^ (WindowSize - 1)
	length := min(int64(WindowSize), f.size-start)
	b, err := unix.Mmap(int(f.f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap %s at %#x: %w", f.f.Name(), start, err)
	}
	f.win, f.winOff = b, start
	return nil
}

// Close unmaps and closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.win != nil {
		unix.Munmap(f.win) //nolint:errcheck // closing anyway; the fd close reports errors
		f.win = nil
	}
	return f.f.Close()
}
