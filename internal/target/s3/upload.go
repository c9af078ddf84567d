// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ukdump/ukdump/internal/targetspec"
)

// Part sizes (targetspec owns them: the config checks part_size, and
// ukdump build records the memory an upload holds for ukdump load's check).
const (
	MinPartSize     = targetspec.S3MinPartSize
	MaxPartSize     = targetspec.S3MaxPartSize
	DefaultPartSize = targetspec.S3DefaultPartSize
	maxParts        = 10000
)

// DefaultInFlight is how many parts are sent at once by default. The
// upload holds InFlight+1 part buffers, filled one and sent the others:
// with the defaults, 16 MiB whatever the dump's size.
const DefaultInFlight = targetspec.S3InFlight

// Upload is an object written by a multipart upload: Write fills a part
// buffer; a full one is sent while the next fills. Each part is sent with
// the client's retries; after a failed attempt it first asks the server
// (ListParts) whether the part arrived, so a connection dropped after the
// server stored a part costs no resend. Close sends the last part; only
// Complete makes the object exist, so a key never names half a dump.
type Upload struct {
	c        *Client
	ctx      context.Context
	key, id  string
	partSize int

	buf   []byte      // filling
	free  chan []byte // empty buffers
	work  chan part
	wg    sync.WaitGroup
	n     int // parts handed to the senders
	size  int64
	mu    sync.Mutex
	err   error
	parts map[int]Part // sent: number → ETag, size
	done  bool         // Close ran
}

type part struct {
	n    int
	data []byte
}

// NewUpload starts a multipart upload of key with parts of partSize bytes,
// inFlight of them sent at once (0: the defaults). ctx bounds every
// request of the upload, Complete and Abort included.
func (c *Client) NewUpload(ctx context.Context, key string, partSize, inFlight int) (*Upload, error) {
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("s3: part size %d is not within %d-%d bytes", partSize, MinPartSize, MaxPartSize)
	}
	id, err := c.createUpload(ctx, key)
	if err != nil {
		return nil, err
	}
	u := &Upload{c: c, ctx: ctx, key: key, id: id, partSize: partSize,
		free: make(chan []byte, inFlight+1), work: make(chan part), parts: map[int]Part{}}
	for range inFlight {
		u.free <- make([]byte, 0, partSize)
	}
	u.buf = make([]byte, 0, partSize)
	for range inFlight {
		u.wg.Add(1)
		go u.sender()
	}
	return u, nil
}

// Key is the object's key; ID the upload's.
func (u *Upload) Key() string { return u.key }
func (u *Upload) ID() string  { return u.id }

// Size is the number of bytes written.
func (u *Upload) Size() int64 { return u.size }

func (u *Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *Upload) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
}

// Write buffers p, handing each full part to a sender; it blocks while
// every buffer is full or in flight, and fails once a part has failed.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("s3: write after close")
	}
	written := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return written, err
		}
		n := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+n]
		p, written, u.size = p[n:], written+n, u.size+int64(n)
		if len(u.buf) == cap(u.buf) {
			if err := u.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush hands the filled buffer to a sender and takes an empty one.
func (u *Upload) flush() error {
	if u.n >= maxParts {
		return fmt.Errorf("s3: %s: more than %d parts of %d bytes: raise part_size", u.key, maxParts, u.partSize)
	}
	u.n++
	select {
	case u.work <- part{u.n, u.buf}:
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
	select {
	case u.buf = <-u.free:
		u.buf = u.buf[:0]
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
	return nil
}

func (u *Upload) sender() {
	defer u.wg.Done()
	for p := range u.work {
		if u.failed() == nil {
			if err := u.send(p); err != nil {
				u.fail(err)
			}
		}
		u.free <- p.data
	}
}

// send uploads one part: the client retries what may pass; should every
// attempt fail, or before sending again after a network error, the
// server's list says whether the part is there already.
func (u *Upload) send(p part) error {
	want := Part{Number: p.n, ETag: md5Hex(p.data), Size: int64(len(p.data))}
	for attempt := 0; ; attempt++ {
		etag, err := u.c.uploadPart(u.ctx, u.key, u.id, p.n, p.data)
		if err == nil {
			if etag == "" {
				etag = want.ETag
			}
			want.ETag = etag
			u.mu.Lock()
			u.parts[p.n] = want
			u.mu.Unlock()
			return nil
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != 0 || attempt > 0 || u.ctx.Err() != nil {
			return err
		}
		// The connection failed through all the retries: the server may
		// have been restarted. Resume: if it has the part, it is sent.
		got, lerr := u.c.listParts(u.ctx, u.key, u.id)
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		for _, g := range got {
			if g.Number == p.n && g.Size == want.Size && sameETag(g.ETag, want.ETag) {
				u.c.Logf("s3: %s part %d was stored before the connection dropped", u.key, p.n)
				u.mu.Lock()
				u.parts[p.n] = g
				u.mu.Unlock()
				return nil
			}
		}
		u.c.Logf("s3: %s: sending part %d again after: %v", u.key, p.n, err)
	}
}

// Close sends the last part and waits for every part: the upload is then
// ready for Complete, or failed. It does not complete the upload.
func (u *Upload) Close() error {
	if u.done {
		return u.failed()
	}
	u.done = true
	var err error
	if len(u.buf) > 0 || u.n == 0 { // an empty object is one empty part
		err = u.flush()
	}
	close(u.work)
	u.wg.Wait()
	return errors.Join(err, u.failed())
}

// Complete makes the object exist. It checks first that the server holds
// every part as sent (ListParts: a server restarted mid-upload may have
// lost one), and then completes with the server's ETags.
func (u *Upload) Complete() error {
	if !u.done {
		if err := u.Close(); err != nil {
			return err
		}
	}
	if err := u.failed(); err != nil {
		return err
	}
	got, err := u.c.listParts(u.ctx, u.key, u.id)
	if err != nil {
		return err
	}
	have := map[int]Part{}
	for _, g := range got {
		have[g.Number] = g
	}
	parts := make([]Part, 0, u.n)
	for i := 1; i <= u.n; i++ {
		g, ok := have[i]
		sent := u.parts[i]
		if !ok || g.Size != sent.Size || !sameETag(g.ETag, sent.ETag) {
			return fmt.Errorf("s3: %s: the server lost part %d of %d (it lists %d parts): the upload cannot be completed", u.key, i, u.n, len(got))
		}
		parts = append(parts, g)
	}
	err = u.c.completeUpload(u.ctx, u.key, u.id, parts)
	var e *Error
	if errors.As(err, &e) && e.Code == "NoSuchUpload" {
		// A retried Complete whose first answer was lost: the object
		// exists if the first one went through.
		if size, ok, herr := u.c.headObject(u.ctx, u.key); herr == nil && ok && size == u.size {
			return nil
		}
	}
	return err
}

// sameETag compares ETags as stores write them: quoted or not, in either case.
func sameETag(a, b string) bool {
	return strings.EqualFold(strings.Trim(a, `"`), strings.Trim(b, `"`))
}

// Abort drops the upload and its parts.
func (u *Upload) Abort(ctx context.Context) error {
	if !u.done {
		u.done = true
		close(u.work)
		u.wg.Wait()
	}
	return u.c.abortUpload(ctx, u.key, u.id)
}
