// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"fmt"
	"io"
	"slices"

	"golang.org/x/sys/unix"
)

const canMmap = true

// ReadAt reads from the mapped windows, mapping a new one in place of the
// least recently used when needed.
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
		w, err := f.window(pos)
		if err != nil {
			f.Mmap = false
			continue
		}
		n += copy(p[n:], w.b[pos-w.off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// window returns the window holding pos, moved to the front of f.wins. A
// miss remaps the last, least recently used (or still empty) window.
func (f *File) window(pos int64) (window, error) {
	i := slices.IndexFunc(f.wins[:], func(w window) bool { return w.b != nil && pos >= w.off && pos < w.off+int64(len(w.b)) })
	if i < 0 {
		i = len(f.wins) - 1
		if w := f.wins[i]; w.b != nil {
			f.wins[i].b = nil
			if err := unix.Munmap(w.b); err != nil {
				return window{}, fmt.Errorf("munmap %s: %w", f.f.Name(), err)
			}
		}
		start := pos &^ (WindowSize - 1)
		length := min(int64(WindowSize), f.size-start)
		b, err := unix.Mmap(int(f.f.Fd()), start, int(length), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return window{}, fmt.Errorf("mmap %s at %#x: %w", f.f.Name(), start, err)
		}
		f.wins[i] = window{b: b, off: start}
		f.maps++
	}
	w := f.wins[i]
	copy(f.wins[1:i+1], f.wins[:i])
	f.wins[0] = w
	return w, nil
}

// Close unmaps and closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.wins {
		if w.b != nil {
			unix.Munmap(w.b) //nolint:errcheck // closing anyway; the fd close reports errors
			f.wins[i].b = nil
		}
	}
	return f.f.Close()
}
