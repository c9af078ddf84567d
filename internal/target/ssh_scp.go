// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_nonet

package target

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// scpSpoolMax is how much of a file the legacy scp mode holds before it
// must know the file's size.
const scpSpoolMax = 1 << 20

// scpDir is a Dir on a server without an SFTP subsystem (scp:// only).
//
// File data goes with the legacy scp protocol: "scp -t DIR" is the sink,
// which is sent "C0600 SIZE NAME\n", SIZE bytes and "\0", and answers each
// step with "\0" (or 1 or 2 and a message). The protocol cannot make a
// directory that must not exist yet, rename, list, remove, fsync or tell the
// free space; those run as POSIX shell commands (mkdir, mv, ls, rm, sync, df)
// — the server runs "scp -t" through the user's shell too — as Fedora's kdump
// does over ssh.
//
// The protocol wants a file's size before its data: a small file (≤ 1 MiB:
// manifest.json, ukdump.log) is held until Sync or Close; a larger one must
// be given its size first (Sizer: collect does so for ELF dumps). A dropped
// connection cannot be resumed: the sink has no offsets.
type scpDir struct {
	r    *sshRemote
	root string
}

func (d *scpDir) String() string { return d.r.s.URL }

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (d *scpDir) path(name string) (string, error) {
	if name == "" {
		return d.root, nil
	}
	if path.IsAbs(name) || !fs.ValidPath(name) {
		return "", fmt.Errorf("bad name %q", name)
	}
	return path.Join(d.root, name), nil
}

// run runs a shell command on the server and returns its output. If the
// connection is lost, it reconnects and runs cmd(try) again.
func (d *scpDir) run(cmd func(try int) string) (string, error) {
	c, err := d.r.conn()
	if err != nil {
		return "", err
	}
	deadline := d.r.reconnectDeadline()
	for try := 0; ; try++ {
		out, err := runOn(c, cmd(try))
		var ee *ssh.ExitError
		if err == nil || errors.As(err, &ee) || !(lostConn(err, c) || isExitMissing(err)) {
			return out, err
		}
		d.r.s.logf("remote command: connection lost (%v); reconnecting", err)
		if c, err = d.r.redial(c, err, deadline); err != nil {
			return "", err
		}
	}
}

func isExitMissing(err error) bool {
	var em *ssh.ExitMissingError
	return errors.As(err, &em)
}

func runOn(c *sshConn, cmd string) (string, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("new session: %w", err)
	}
	defer sess.Close() // Run has ended it; closing again only reports that
	var out, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &stderr
	if err := sess.Run(cmd); err != nil {
		return out.String(), fmt.Errorf("remote command %q: %w: %s", cmd, err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// exitStatus is a remote command's exit status, or -1.
func exitStatus(err error) int {
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return -1
}

// open makes the top directory.
func (d *scpDir) open() error {
	q := shellQuote(d.root)
	if _, err := d.run(func(int) string { return "mkdir -p -- " + q + " && test -d " + q }); err != nil {
		return fmt.Errorf("make %s: %w", d.root, err)
	}
	return nil
}

// errExists is the exit status of mkdir's script when the directory exists.
const errExists = 17

func (d *scpDir) Mkdir(name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	q := shellQuote(p)
	_, err = d.run(func(int) string {
		return fmt.Sprintf("if [ -e %s ] || [ -L %s ]; then exit %d; fi; mkdir -m 0700 -- %s", q, q, errExists, q)
	})
	if exitStatus(err) == errExists {
		return &fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist}
	}
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	return nil
}

func (d *scpDir) Create(name string) (File, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	return &scpFile{d: d, path: p, size: -1}, nil
}

func (d *scpDir) Rename(oldname, newname string) error {
	op, err := d.path(oldname)
	if err != nil {
		return err
	}
	np, err := d.path(newname)
	if err != nil {
		return err
	}
	qo, qn := shellQuote(op), shellQuote(np)
	_, err = d.run(func(try int) string {
		if try > 0 { // a retry after a lost answer: done if oldname is gone and newname is there
			return fmt.Sprintf("if [ ! -e %s ] && [ -e %s ]; then exit 0; fi; mv -f -- %s %s", qo, qn, qo, qn)
		}
		return fmt.Sprintf("mv -f -- %s %s", qo, qn)
	})
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", op, np, err)
	}
	return nil
}

// SyncDir runs sync on the server: the shell has no fsync of one directory
// that every server's sync understands.
func (d *scpDir) SyncDir(name string) error {
	if _, err := d.path(name); err != nil {
		return err
	}
	if _, err := d.run(func(int) string { return "sync" }); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

func (d *scpDir) List() ([]string, error) {
	out, err := d.run(func(int) string { return "ls -1Ap -- " + shellQuote(d.root) })
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.root, err)
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if n, ok := strings.CutSuffix(l, "/"); ok && n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

func (d *scpDir) RemoveAll(name string) error {
	p, err := d.path(name)
	if err != nil || name == "" {
		return errors.Join(err, errors.New("refusing to remove the target's top directory"))
	}
	if _, err := d.run(func(int) string { return "rm -rf -- " + shellQuote(p) }); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// Free is df's available space; if df fails, the space is unknown and Free
// says "plenty".
func (d *scpDir) Free() (int64, error) {
	out, err := d.run(func(int) string { return "df -Pk -- " + shellQuote(d.root) })
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var f []string
	if err == nil && len(lines) > 1 {
		f = strings.Fields(lines[len(lines)-1])
	}
	if len(f) < 4 {
		d.r.s.logf("note: free space on %s is unknown (df -Pk %s: %v, %q); min_free is not checked", d.r.u.addr(), d.root, err, out)
		return math.MaxInt64, nil
	}
	kb, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || kb > math.MaxInt64/1024 {
		d.r.s.logf("note: free space on %s is unknown (df -Pk %s said %q); min_free is not checked", d.r.u.addr(), d.root, lines[len(lines)-1])
		return math.MaxInt64, nil
	}
	return kb * 1024, nil
}

func (d *scpDir) Close() error {
	d.r.close()
	return nil
}

// scpFile is a file sent with "scp -t". Nothing goes out before its size is
// known (see scpDir); after that, Write streams.
type scpFile struct {
	d    *scpDir
	path string
	// spool holds the start of the file until its size is known.
	spool []byte
	size  int64 // -1 until known
	sent  int64
	sess  *ssh.Session
	in    io.WriteCloser
	w     *bufio.Writer // data to in: the collector may write a page at a time
	out   *bufio.Reader
	done  bool
	err   error // sticky: the stream is broken
}

func (f *scpFile) fail(err error) error {
	if f.err == nil {
		f.err = &fs.PathError{Op: "scp", Path: f.path, Err: err}
		if f.sess != nil {
			f.sess.Close() // the sink keeps what it wrote; the error is f.err
		}
	}
	return f.err
}

func (f *scpFile) Write(b []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.done {
		return 0, f.fail(errors.New("write after sync"))
	}
	if f.sess == nil {
		if len(f.spool)+len(b) > scpSpoolMax {
			return 0, f.fail(fmt.Errorf("the legacy scp protocol needs a file's size before its data, and this file is larger than %d bytes and its writer did not give its size (enable the server's SFTP subsystem: Subsystem sftp internal-sftp)", scpSpoolMax))
		}
		f.spool = append(f.spool, b...)
		return len(b), nil
	}
	if err := f.send(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetSize announces the file's size (Sizer) and starts its transfer, with
// what was written before it. The file must then be given size bytes in
// all: Sync and Close fail on fewer, Write on more.
func (f *scpFile) SetSize(size int64) error {
	switch {
	case f.err != nil:
		return f.err
	case f.sess != nil:
		return f.fail(fmt.Errorf("SetSize(%d) after the transfer began (size %d)", size, f.size))
	case size < int64(len(f.spool)):
		return f.fail(fmt.Errorf("SetSize(%d) after %d bytes were written", size, len(f.spool)))
	}
	if err := f.start(size); err != nil {
		return err
	}
	err := f.send(f.spool)
	f.spool = nil
	return err
}

// start begins the transfer of a file of size bytes.
func (f *scpFile) start(size int64) error {
	c, err := f.d.r.conn()
	if err != nil {
		return f.fail(err)
	}
	sess, err := c.client.NewSession()
	if err != nil {
		return f.fail(fmt.Errorf("new session: %w", err))
	}
	f.sess, f.size = sess, size
	if f.in, err = sess.StdinPipe(); err != nil {
		return f.fail(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return f.fail(err)
	}
	f.out = bufio.NewReader(out)
	var stderr bytes.Buffer
	sess.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	dir, base := path.Split(f.path)
	if dir == "" {
		dir = "."
	}
	if err := sess.Start("scp -t -- " + shellQuote(dir)); err != nil {
		return f.fail(fmt.Errorf("start scp -t: %w", err))
	}
	if err := f.ack("start"); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f.in, "C0600 %d %s\n", size, base); err != nil {
		return f.fail(fmt.Errorf("send file header: %w", err))
	}
	f.w = bufio.NewWriterSize(f.in, 256<<10)
	return f.ack("file header")
}

// send streams file data, no more than the size announced.
func (f *scpFile) send(b []byte) error {
	if f.sent+int64(len(b)) > f.size {
		return f.fail(fmt.Errorf("given more than the %d bytes announced", f.size))
	}
	n, err := f.w.Write(b)
	f.sent += int64(n)
	if err != nil {
		return f.fail(fmt.Errorf("send data at %d: %w", f.sent, err))
	}
	return nil
}

// ack reads the sink's answer to a step.
func (f *scpFile) ack(step string) error {
	b, err := f.out.ReadByte()
	if err != nil {
		return f.fail(fmt.Errorf("%s: no answer from scp -t: %w", step, err))
	}
	switch b {
	case 0:
		return nil
	case 1, 2:
		msg, _ := f.out.ReadString('\n') // the message is what there is; a short one still says something
		return f.fail(fmt.Errorf("%s: server's scp: %s", step, strings.TrimSpace(msg)))
	default:
		return f.fail(fmt.Errorf("%s: scp -t answered %q, not an acknowledgement", step, b))
	}
}

// finish ends the transfer: all data, "\0", the sink's acknowledgement, and
// the end of the session.
func (f *scpFile) finish() error {
	if f.err != nil || f.done {
		return f.err
	}
	if f.sess == nil {
		if err := f.start(int64(len(f.spool))); err != nil {
			return err
		}
		if err := f.send(f.spool); err != nil {
			return err
		}
		f.spool = nil
	}
	if f.sent != f.size {
		return f.fail(fmt.Errorf("only %d of the %d bytes announced were written; the server keeps an incomplete file", f.sent, f.size))
	}
	if err := f.w.WriteByte(0); err != nil {
		return f.fail(fmt.Errorf("send end of data: %w", err))
	}
	if err := f.w.Flush(); err != nil {
		return f.fail(fmt.Errorf("send end of data: %w", err))
	}
	if err := f.ack("end of data"); err != nil {
		return err
	}
	f.in.Close() // EOF tells the sink there are no more files; Wait reports how it ended
	if err := f.sess.Wait(); err != nil {
		return f.fail(fmt.Errorf("scp -t: %w", err))
	}
	f.done = true
	return nil
}

// Sync completes the transfer and runs sync on the server; nothing may be
// written after it.
func (f *scpFile) Sync() error {
	if err := f.finish(); err != nil {
		return err
	}
	if _, err := f.d.run(func(int) string { return "sync" }); err != nil {
		return &fs.PathError{Op: "sync", Path: f.path, Err: err}
	}
	return nil
}

// Close completes the transfer if Sync did not.
func (f *scpFile) Close() error {
	if f.done {
		return nil
	}
	err := f.finish()
	if f.sess != nil {
		f.sess.Close() // ended by finish or fail; a second close only says so
	}
	return err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
