// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/ukdump/ukdump/internal/target"
)

// e2eKillAfterKey is the test-only word ukdump.e2e.kill_after=BYTES on the
// capture kernel's command line: once the dump file has received BYTES
// bytes, the capture makes them durable and dies on the spot, as an
// OOM-killed or crashed capture would (the end-to-end test checks what such
// a death leaves on the disk). No production config sets it.
const e2eKillAfterKey = "ukdump.e2e.kill_after"

// e2eKillStatus is the exit status of the killed capture: 128+SIGKILL, what
// a shell reports for an OOM-killed process. As PID 1 the kernel panics
// ("Attempted to kill init") and panic= reboots it.
const e2eKillStatus = 137

// errE2EKilled is what writes return after the kill, when die returned
// (only in tests).
var errE2EKilled = errors.New(e2eKillAfterKey + ": the capture was killed")

// e2eHooks wraps the dump file being written with the test-only hooks the
// capture kernel's command line asks for; without them it returns f itself.
// The kill is os.Exit on purpose, below main: no deferred cleanup, no Abort,
// no rename may run, as none would after an OOM kill.
func (c *capture) e2eHooks(f target.File) target.File {
	return c.e2eWrap(f, func() { os.Exit(e2eKillStatus) })
}

// e2eWrap is e2eHooks with the death injected.
func (c *capture) e2eWrap(f target.File, die func()) target.File {
	v, ok := cmdlineWord(c.cmdline, e2eKillAfterKey)
	if !ok {
		return f
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		c.log.Printf("warning: %s=%s: want a byte count; not killing the capture", e2eKillAfterKey, v)
		return f
	}
	c.log.Printf("test hook %s=%d: the capture dies after %d bytes of the dump, without cleanup", e2eKillAfterKey, n, n)
	k := &killFile{f: f, limit: n, die: die, logf: c.log.Printf}
	if _, ok := f.(fileAt); ok {
		return killFileAt{k}
	}
	return k
}

// cmdlineWord returns the value of the last key=VALUE word on a command
// line, unquoted.
func cmdlineWord(cmdline, key string) (string, bool) {
	v, found := "", false
	for _, w := range strings.Fields(cmdline) {
		if k, val, ok := strings.Cut(w, "="); ok && k == key {
			v, found = strings.Trim(val, `"`), true
		}
	}
	return v, found
}

// fileAt is a target file the kdump writer can seek in.
type fileAt interface {
	target.File
	io.WriterAt
	io.ReaderAt
}

// killFile passes writes through until limit bytes have been written, then
// syncs the file and calls die; Write and WriteAt count alike, and the write
// that reaches the limit is cut there.
type killFile struct {
	f    target.File
	die  func()
	logf func(format string, args ...any)

	limit int64

	mu      sync.Mutex
	written int64
	killed  bool
}

func (k *killFile) Write(p []byte) (int, error) {
	return k.write(p, func(b []byte) (int, error) { return k.f.Write(b) })
}

func (k *killFile) write(p []byte, write func([]byte) (int, error)) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return 0, errE2EKilled
	}
	left := k.limit - k.written
	cut := int64(len(p)) >= left
	if cut {
		p = p[:left]
	}
	n, err := write(p)
	k.written += int64(n)
	if err != nil || !cut {
		return n, err
	}
	// What the page cache holds would reach the disk sooner or later;
	// fsync now so that the test sees the same file every time (on ext4
	// it commits the journal, the directory entry included).
	if err := k.f.Sync(); err != nil {
		k.logf("warning: %s: fsync: %v", e2eKillAfterKey, err)
	}
	k.logf("%s: %d bytes written; dying now", e2eKillAfterKey, k.written)
	k.killed = true
	k.die()
	return n, errE2EKilled
}

func (k *killFile) Sync() error { return k.f.Sync() }

// SetSize gives the size to a file that wants it before its data
// (target.Sizer); to any other, it is not needed.
func (k *killFile) SetSize(size int64) error {
	if s, ok := k.f.(target.Sizer); ok {
		return s.SetSize(size)
	}
	return nil
}

func (k *killFile) Close() error { return k.f.Close() }

// killFileAt is a killFile over a file with WriteAt and ReadAt.
type killFileAt struct{ *killFile }

func (k killFileAt) WriteAt(p []byte, off int64) (int, error) {
	fa := k.f.(fileAt)
	return k.write(p, func(b []byte) (int, error) { return fa.WriteAt(b, off) })
}

func (k killFileAt) ReadAt(p []byte, off int64) (int, error) { return k.f.(fileAt).ReadAt(p, off) }
