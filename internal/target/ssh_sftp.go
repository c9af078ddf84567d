// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_nonet

package target

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"sync"

	"github.com/pkg/sftp"
)

// sftpPiece is the most a File buffers and writes with one WriteAt: 32
// requests of 32 KiB in flight, all acknowledged before the next piece.
const sftpPiece = 1 << 20

// noFsync is the note logged once when fsync@openssh.com is missing.
const noFsync = "note: %s has no fsync@openssh.com: files and directories are not fsynced (a crash of the server may lose them)"

// sftpDir is a Dir over SFTP.
type sftpDir struct {
	r    *sshRemote
	root string
	// Extensions the server offered.
	posixRename, fsync, statvfs bool
	noted                       sync.Map // notes logged once, by text
}

func (d *sftpDir) String() string { return d.r.s.URL }

func (d *sftpDir) notef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if _, seen := d.noted.LoadOrStore(msg, true); !seen {
		d.r.s.logf("%s", msg)
	}
}

func (d *sftpDir) path(name string) (string, error) {
	if name == "" {
		return d.root, nil
	}
	if path.IsAbs(name) || !fs.ValidPath(name) {
		return "", fmt.Errorf("bad name %q", name)
	}
	return path.Join(d.root, name), nil
}

// do runs fn on the connection; if the connection is lost, it reconnects
// and runs fn again (try counts the runs). fn must allow for an earlier run
// having done its work with the answer lost.
func (d *sftpDir) do(op string, fn func(c *sshConn, try int) error) error {
	c, err := d.r.conn()
	if err != nil {
		return err
	}
	deadline := d.r.reconnectDeadline()
	for try := 0; ; try++ {
		err := fn(c, try)
		if !lostConn(err, c) {
			return err
		}
		d.r.s.logf("%s: connection lost (%v); reconnecting", op, err)
		if c, err = d.r.redial(c, err, deadline); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
}

func (d *sftpDir) Mkdir(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	return d.do("mkdir "+p, func(c *sshConn, try int) error {
		sc := c.sftp
		err := sc.Mkdir(p)
		if err != nil {
			// SFTP v3 has no "exists" status; look.
			fi, serr := sc.Lstat(p)
			if serr != nil {
				return &fs.PathError{Op: "mkdir", Path: p, Err: err}
			}
			if try == 0 || !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist}
			}
			// A retry after a lost answer: ours if still empty.
			if ents, rerr := sc.ReadDir(p); rerr != nil || len(ents) > 0 {
				return &fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist}
			}
		}
		if err := sc.Chmod(p, 0o700); err != nil { // exact, whatever the server's umask
			return &fs.PathError{Op: "chmod", Path: p, Err: err}
		}
		return nil
	})
}

func (d *sftpDir) Create(name string) (File, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f := &sftpFile{d: d, path: p}
	err = d.do("create "+p, func(c *sshConn, _ int) error {
		sf, err := c.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return &fs.PathError{Op: "create", Path: p, Err: err}
		}
		if err := sf.Chmod(0o600); err != nil {
			sf.Close() // the chmod error is the one to report
			return &fs.PathError{Op: "chmod", Path: p, Err: err}
		}
		f.c, f.f = c, sf
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (d *sftpDir) Rename(oldname, newname string) error {
	op, err := d.path(oldname)
	if err != nil {
		return err
	}
	np, err := d.path(newname)
	if err != nil {
		return err
	}
	if !d.posixRename {
		d.notef("note: %s has no posix-rename@openssh.com: a rename over a file is remove, then rename (not atomic)", d.r.u.addr())
	}
	return d.do("rename "+op, func(c *sshConn, try int) error {
		sc := c.sftp
		var err error
		if d.posixRename {
			err = sc.PosixRename(op, np)
		} else {
			// SFTP v3 rename fails if newname exists.
			if rerr := sc.Remove(np); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return &os.LinkError{Op: "rename", Old: op, New: np, Err: fmt.Errorf("remove the old %s: %w", np, rerr)}
			}
			err = sc.Rename(op, np)
		}
		if err != nil && try > 0 {
			// A retry after a lost answer: done if oldname is gone and newname is there.
			if _, oerr := sc.Lstat(op); errors.Is(oerr, fs.ErrNotExist) {
				if _, nerr := sc.Lstat(np); nerr == nil {
					return nil
				}
			}
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: op, New: np, Err: err}
		}
		return nil
	})
}

// SyncDir fsyncs a directory: OpenSSH's sftp-server opens a directory as a
// file handle, and fsync@openssh.com on it fsyncs the directory.
func (d *sftpDir) SyncDir(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if !d.fsync {
		d.notef(noFsync, d.r.u.addr())
		return nil
	}
	return d.do("fsync "+p, func(c *sshConn, _ int) error {
		sc := c.sftp
		f, err := sc.Open(p)
		if err != nil {
			d.notef("note: %s cannot open directory %s to fsync it (%v); its entries are not fsynced", d.r.u.addr(), p, err)
			return nil
		}
		defer f.Close() // read-only: nothing to lose
		if err := f.Sync(); err != nil {
			return &fs.PathError{Op: "fsync", Path: p, Err: err}
		}
		return nil
	})
}

func (d *sftpDir) List() ([]string, error) {
	var names []string
	err := d.do("list "+d.root, func(c *sshConn, _ int) error {
		sc := c.sftp
		ents, err := sc.ReadDir(d.root)
		if err != nil {
			return &fs.PathError{Op: "readdir", Path: d.root, Err: err}
		}
		names = names[:0]
		for _, e := range ents {
			if e.IsDir() { // lstat'ed by the server: a symlink is not a directory
				names = append(names, e.Name())
			}
		}
		return nil
	})
	return names, err
}

func (d *sftpDir) RemoveAll(name string) error {
	p, err := d.path(name)
	if err != nil || name == "" {
		return errors.Join(err, errors.New("refusing to remove the target's top directory"))
	}
	return d.do("remove "+p, func(c *sshConn, _ int) error {
		sc := c.sftp
		if err := sc.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &fs.PathError{Op: "removeall", Path: p, Err: err}
		}
		return nil
	})
}

// Free is statvfs@openssh.com's f_bavail × f_frsize; without that
// extension the space is unknown and Free says "plenty".
func (d *sftpDir) Free() (int64, error) {
	if !d.statvfs {
		d.notef("note: %s has no statvfs@openssh.com: free space is unknown, min_free is not checked", d.r.u.addr())
		return math.MaxInt64, nil
	}
	var free int64
	err := d.do("statvfs "+d.root, func(c *sshConn, _ int) error {
		sc := c.sftp
		st, err := sc.StatVFS(d.root)
		if err != nil {
			return &fs.PathError{Op: "statvfs", Path: d.root, Err: err}
		}
		bs := st.Frsize
		if bs == 0 {
			bs = st.Bsize
		}
		free = int64(min(st.Bavail*bs, math.MaxInt64))
		return nil
	})
	return free, err
}

func (d *sftpDir) Close() error {
	d.r.close()
	return nil
}

// sftpFile is a file written over SFTP that survives a lost connection.
//
// Writes are gathered in a buffer of sftpPiece bytes (the collector may
// write a page at a time) and sent a piece at a time; a Write of whole
// pieces is sent straight from the caller's buffer. A piece is sent before
// Write returns, and only the piece being sent is kept: memory is bounded
// by sftpPiece here plus the requests pkg/sftp has in flight.
//
// What pkg/sftp guarantees, and what follows for resuming:
//
//   - File.WriteAt with concurrent writes sends a piece as up to 64
//     requests of 32 KiB at once and returns when all are answered. The
//     server may do them in any order, and when the connection drops some
//     later requests may have been written while earlier ones were not:
//     the remote size says nothing about what is intact. WriteAt returns
//     the offset of the first request that failed, after waiting for every
//     request it handed out (v1.13: writeAtConcurrent): every byte before
//     it was acknowledged, so that count is exact.
//   - An acknowledged write is in the server's file (its page cache): a lost
//     connection does not undo it. A server that restarts can lose it; that
//     shows as a remote file shorter than acked and is an error, because the
//     lost bytes are no longer here to send again.
//
// So acked, the offset below which every byte was acknowledged, is where a
// resumed write starts: the file is opened again, truncated to acked (what
// lies beyond was never acknowledged, and may have holes), and the rest of
// the piece is sent. Nothing acknowledged is sent twice. As a check on the
// count, the acknowledged part of the current piece is read back first
// (≤ 1 MiB from the server; see reopen). Every request, even a stale one a
// dying connection delivers late, carries the stream's own bytes for its
// offset, so a late one cannot corrupt the file.
//
// As with bufio.Writer, bytes a Write accepted into the buffer are sent by
// a later Write, Sync or Close, which reports their loss; its error says
// how many bytes the server has.
type sftpFile struct {
	d    *sftpDir
	path string
	c    *sshConn // the connection f belongs to
	f    *sftp.File
	// acked is the offset below which the server acknowledged every byte.
	acked int64
	// buf holds bytes accepted but not yet sent (at offset acked); it is
	// allocated at the first short Write.
	buf []byte
	err error // sticky: the file cannot go on
}

func (f *sftpFile) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for len(b) > 0 {
		if len(f.buf) == 0 && len(b) >= sftpPiece {
			// Whole pieces go straight from the caller's buffer.
			p := b[:len(b)/sftpPiece*sftpPiece]
			start := f.acked
			if err := f.send(p); err != nil {
				return n + int(f.acked-start), err
			}
			n, b = n+len(p), b[len(p):]
			continue
		}
		if f.buf == nil {
			f.buf = make([]byte, 0, sftpPiece)
		}
		m := min(len(b), sftpPiece-len(f.buf))
		f.buf = append(f.buf, b[:m]...)
		n, b = n+m, b[m:]
		if len(f.buf) == sftpPiece {
			earlier, start := int64(len(f.buf)-m), f.acked // the buffer holds earlier Writes' bytes, then m of ours
			if err := f.flush(); err != nil {
				return n - m + int(max(0, f.acked-start-earlier)), err
			}
		}
	}
	return n, nil
}

// flush sends the buffer.
func (f *sftpFile) flush() error {
	if f.err != nil || len(f.buf) == 0 {
		return f.err
	}
	err := f.send(f.buf)
	f.buf = f.buf[:0]
	return err
}

// send writes b at acked, piece by piece, resuming after lost connections;
// it returns when the server has acknowledged all of b.
func (f *sftpFile) send(b []byte) error {
	base := f.acked
	for {
		done := int(f.acked - base)
		if done >= len(b) {
			return nil
		}
		// The rest of the current piece: after a partial acknowledgement,
		// the piece is finished before the next one starts.
		ps := done / sftpPiece * sftpPiece
		pe := min(ps+sftpPiece, len(b))
		n, err := f.f.WriteAt(b[done:pe], f.acked)
		f.acked += int64(max(0, min(n, pe-done)))
		if err == nil {
			continue
		}
		if !lostConn(err, f.c) {
			f.err = &fs.PathError{Op: "write", Path: f.path, Err: fmt.Errorf("at offset %d (the server has the bytes before it): %w", f.acked, err)}
			return f.err
		}
		if err := f.resume(err, b[ps:f.acked-base]); err != nil {
			f.err = err
			return err
		}
	}
}

// resume reconnects after cause and opens the file again at acked. tail is
// what the server acknowledged of the current piece (it ends at acked).
func (f *sftpFile) resume(cause error, tail []byte) error {
	deadline := f.d.r.reconnectDeadline()
	for {
		f.d.r.s.logf("write %s: connection lost at %d bytes (%v); reconnecting", f.path, f.acked, cause)
		c, err := f.d.r.redial(f.c, cause, deadline)
		if err != nil {
			return &fs.PathError{Op: "write", Path: f.path, Err: fmt.Errorf("resume at %d (the server has the bytes before it): %w", f.acked, err)}
		}
		f.c = c
		f.f.Close() // the handle died with its connection; there is nothing to report
		err = f.reopen(tail)
		if err == nil {
			return nil
		}
		if !lostConn(err, c) {
			return &fs.PathError{Op: "write", Path: f.path, Err: fmt.Errorf("resume at %d (the server has the bytes before it): %w", f.acked, err)}
		}
		cause = err
	}
}

// reopen opens the file on the current connection and cuts it back to
// acked. It reads back tail, the acknowledged part of the current piece:
// if the server's copy differs (which pkg/sftp's count of acknowledged
// bytes rules out, but that count is the one thing resuming trusts), acked
// goes back to the start of the piece, which is sent again whole.
func (f *sftpFile) reopen(tail []byte) error {
	sf, err := f.c.sftp.OpenFile(f.path, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("open again: %w", err)
	}
	fail := func(err error) error {
		sf.Close() // err is the one to report
		return err
	}
	fi, err := sf.Stat()
	if err != nil {
		return fail(fmt.Errorf("stat: %w", err))
	}
	size := fi.Size()
	if size < f.acked {
		return fail(fmt.Errorf("the server has %d bytes of it, fewer than the %d it acknowledged: it lost data (restarted before syncing?), which is no longer here to send again", size, f.acked))
	}
	if len(tail) > 0 {
		got := make([]byte, len(tail))
		if _, err := sf.ReadAt(got, f.acked-int64(len(tail))); err != nil {
			return fail(fmt.Errorf("read back %d bytes before %d: %w", len(tail), f.acked, err))
		}
		if !bytes.Equal(got, tail) {
			f.d.r.s.logf("warning: write %s: the server's copy of %d acknowledged bytes before %d differs from what was sent; sending them again", f.path, len(tail), f.acked)
			f.acked -= int64(len(tail))
		}
	}
	if size > f.acked {
		if err := sf.Truncate(f.acked); err != nil {
			return fail(fmt.Errorf("truncate to %d: %w", f.acked, err))
		}
		f.d.r.s.logf("write %s: resuming at %d, dropping the %d unacknowledged bytes the server had after it", f.path, f.acked, size-f.acked)
	} else {
		f.d.r.s.logf("write %s: resuming at %d", f.path, f.acked)
	}
	f.f = sf
	return nil
}

// Sync fsyncs the file (fsync@openssh.com); without that extension it logs
// a note and returns nil.
func (f *sftpFile) Sync() error {
	if err := f.flush(); err != nil {
		return err
	}
	if !f.d.fsync {
		f.d.notef(noFsync, f.d.r.u.addr())
		return nil
	}
	for {
		err := f.f.Sync()
		if err == nil {
			return nil
		}
		if !lostConn(err, f.c) {
			return &fs.PathError{Op: "fsync", Path: f.path, Err: err}
		}
		// fsync flushes the file, not the handle: a new handle will do.
		if err := f.resume(err, nil); err != nil {
			return err
		}
	}
}

// Close closes the handle. If the connection is gone, so is the handle,
// and every byte written was acknowledged: that is not an error.
func (f *sftpFile) Close() error {
	ferr := f.flush()
	err := f.f.Close()
	if ferr != nil {
		return ferr // the handle's fate adds nothing
	}
	if lostConn(err, f.c) {
		f.d.r.s.logf("close %s: connection lost (%v); all %d bytes were acknowledged before", f.path, err, f.acked)
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
