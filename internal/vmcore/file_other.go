// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package vmcore

const canMmap = false

// ReadAt reads with pread.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// View has no mapped windows to offer here: callers use ReadAt.
func (f *File) View(off int64, n int) (b []byte, release func(), ok bool) { return nil, nil, false }
