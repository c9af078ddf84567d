// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore

import (
	"errors"
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
		var w window
		var err error
		if f.Mmap {
			w, err = f.window(pos)
		}
		if !f.Mmap || errors.Is(err, errPinned) {
			// pread: without mmap, or around the windows when views pin
			// every one.
			m, err := f.f.ReadAt(p[n:], pos)
			return n + m, err
		}
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

// View returns the n bytes of the file at off in place, as a slice of a
// mapped window, and the function that gives the slice back: until it is
// called the window stays mapped, and after it the slice must not be used.
// Reading pages where they are mapped spares a copy of every page the dump
// stores (a tenth of ukdump collect's time on one CPU). ok is false when
// the bytes are not all inside one window or cannot be mapped; ReadAt then
// reads them.
func (f *File) View(off int64, n int) (b []byte, release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Mmap || off < 0 || n <= 0 || off+int64(n) > f.size || off/WindowSize != (off+int64(n)-1)/WindowSize {
		return nil, nil, false
	}
	w, err := f.window(off)
	if err != nil {
		if !errors.Is(err, errPinned) {
			f.Mmap = false
		}
		return nil, nil, false
	}
	f.wins[0].pins++
	released := false
	release = func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if released {
			return
		}
		released = true
		// A pinned window stays until Close, which unmaps them all.
		if i := slices.IndexFunc(f.wins[:], func(x window) bool { return x.b != nil && x.off == w.off }); i >= 0 {
			f.wins[i].pins--
		}
	}
	lo := off - w.off
	return w.b[lo : lo+int64(n) : lo+int64(n)], release, true
}

// errPinned: every window is pinned by a view, none can be remapped.
var errPinned = errors.New("every mmap window is in use")

// window returns the window holding pos, moved to the front of f.wins. A
// miss remaps the least recently used window (or an empty one) that no
// view pins.
func (f *File) window(pos int64) (window, error) {
	i := slices.IndexFunc(f.wins[:], func(w window) bool { return w.b != nil && pos >= w.off && pos < w.off+int64(len(w.b)) })
	if i < 0 {
		for i = len(f.wins) - 1; i >= 0 && f.wins[i].pins > 0; i-- {
		}
		if i < 0 {
			return window{}, errPinned
		}
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
