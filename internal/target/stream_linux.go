// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package target

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind is how much written data may sit in the page cache before a
// file written by the capture pushes it to disk and drops it.
const writeBehind = 4 << 20

// streamFile is a file written once, front to back, that keeps little of
// itself in the page cache: every writeBehind bytes it starts writeback of
// the new data, waits for the previous window, and drops that from the cache.
// A capture kernel has a few MiB to spare; a 1 GiB dump written through the
// page cache left it "deadlocked on memory" at crashkernel=96M (measured in
// the e2e), because dirty pages cannot be reclaimed faster than the disk
// takes them.
type streamFile struct {
	*os.File
	off     int64 // bytes written
	started int64 // writeback started up to here
	done    int64 // written back and dropped up to here
	// atBytes counts WriteAt bytes since writeback was last started.
	atBytes int64
	// The WriteAt ranges: cur is what was written since writeback was last
	// started, prev what writeback was started for then (lo > hi: none).
	cur, prev span
}

// span is a range of file offsets [lo, hi).
type span struct{ lo, hi int64 }

func (s span) empty() bool { return s.lo >= s.hi }

// WriteAt writes at an offset (the kdump format writes its bitmaps,
// descriptor table and page data in three places). Write-behind is
// pipelined as for Write: every writeBehind/2 bytes the range written since
// the last time starts its writeback, and the range before it is waited
// for and dropped from the cache, so that the capture computes the next
// pages while the disk takes the last ones, and at most about writeBehind
// bytes sit in the cache.
func (s *streamFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.File.WriteAt(p, off)
	if n <= 0 {
		return n, err
	}
	if s.cur.empty() {
		s.cur = span{off, off + int64(n)}
	} else {
		s.cur = span{min(s.cur.lo, off), max(s.cur.hi, off+int64(n))}
	}
	s.atBytes += int64(n)
	if s.atBytes >= writeBehind/2 {
		fd := int(s.Fd())
		// Best effort: these only manage the cache; errors surface in fsync.
		unix.SyncFileRange(fd, s.cur.lo, s.cur.hi-s.cur.lo, unix.SYNC_FILE_RANGE_WRITE)
		if !s.prev.empty() {
			unix.SyncFileRange(fd, s.prev.lo, s.prev.hi-s.prev.lo, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			unix.Fadvise(fd, s.prev.lo, s.prev.hi-s.prev.lo, unix.FADV_DONTNEED)
		}
		s.prev, s.cur = s.cur, span{}
		s.atBytes = 0
	}
	return n, err
}

func newStreamFile(f *os.File) *streamFile { return &streamFile{File: f} }

func (s *streamFile) Write(p []byte) (int, error) {
	n, err := s.File.Write(p)
	s.off += int64(n)
	if s.off-s.started >= writeBehind {
		fd := int(s.Fd())
		// Best effort: these only manage the cache; errors surface in fsync.
		unix.SyncFileRange(fd, s.started, s.off-s.started, unix.SYNC_FILE_RANGE_WRITE)
		if s.started > s.done {
			unix.SyncFileRange(fd, s.done, s.started-s.done, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			unix.Fadvise(fd, s.done, s.started-s.done, unix.FADV_DONTNEED)
			s.done = s.started
		}
		s.started = s.off
	}
	return n, err
}
