// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

func testPipeline(t *testing.T) *pipeline {
	t.Helper()
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0, 4 << 20}}, Seed: 3}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	ranges, _ := pageRanges(c, 4096)
	return &pipeline{src: im, ranges: slices.Values(ranges), pageSize: 4096, chunkPages: 16, workers: 2, inflight: 4}
}

// A parent context cancelled without a cause stops the pipeline with an
// error: a prefix of the dump is never a success.
func TestPipelineParentCancelled(t *testing.T) {
	p := testPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pages int
	err := p.run(ctx, func(pfn uint64, po pageOut) error {
		if pages++; pages == 20 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run after the parent was cancelled = %v (after %d of 1024 pages), want context.Canceled", err, pages)
	}
	if pages >= 1024 {
		t.Errorf("all %d pages emitted after the cancel", pages)
	}
}

// A complete run is a success even if the parent is cancelled right after.
func TestPipelineComplete(t *testing.T) {
	p := testPipeline(t)
	var pages int
	if err := p.run(context.Background(), func(uint64, pageOut) error { pages++; return nil }); err != nil || pages != 1024 {
		t.Fatalf("run = %v after %d pages, want nil after 1024", err, pages)
	}
}

// A worker that fails to start fails the run and leaves no goroutine behind.
func TestPipelineWorkerStartFails(t *testing.T) {
	p := testPipeline(t)
	p.workers = 4
	boom := errors.New("zstd: out of memory")
	n := 0
	p.newProcess = func() (processFunc, error) {
		if n++; n == 3 {
			return nil, boom
		}
		return func(dst, page []byte) ([]byte, uint32) { return page, 0 }, nil
	}
	before := runtime.NumGoroutine()
	err := p.run(context.Background(), func(uint64, pageOut) error { return nil })
	if !errors.Is(err, boom) {
		t.Fatalf("run = %v, want the worker's error", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left running (%d before):\n%s", g-before, before, buf[:runtime.Stack(buf, true)])
	}
}

// lender is a source that lends copies of its bytes (View) and poisons
// each copy when it is given back, so that a page used after its release
// reads as garbage. It refuses every other view, which then goes through
// ReadAt.
type lender struct {
	io.ReaderAt
	mu      sync.Mutex
	lent    int // views not yet released
	views   int
	refused int
}

func (l *lender) View(off int64, n int) ([]byte, func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.views++; l.views%2 == 0 {
		l.refused++
		return nil, nil, false
	}
	b := make([]byte, n)
	if _, err := l.ReadAt(b, off); err != nil {
		panic(err)
	}
	l.lent++
	return b, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lent--
		for i := range b {
			b[i] = 0xAA
		}
	}, true
}

// Pages read in place reach emit before their views are released, the same
// bytes as read by copy, and every view is released: after a run, after an
// emit that fails, after a cancel.
func TestPipelineViews(t *testing.T) {
	sum := func(p *pipeline, ctx context.Context, stop int, cancel func()) (string, int, error) {
		h := sha256.New()
		pages := 0
		err := p.run(ctx, func(pfn uint64, po pageOut) error {
			if pages++; pages == stop {
				if cancel != nil {
					cancel()
					return nil
				}
				return errors.New("disk full")
			}
			h.Write(po.data)
			return nil
		})
		return hex.EncodeToString(h.Sum(nil)), pages, err
	}
	p := testPipeline(t)
	want, _, err := sum(p, context.Background(), -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, stop := range []int{-1, 1, 100} {
		for _, cancelled := range []bool{false, true} {
			p := testPipeline(t)
			l := &lender{ReaderAt: p.src}
			p.src = l
			if stop == 1 {
				// The first chunk's worker is slow: the next chunks
				// are done, waiting for it, when its first page
				// fails, and are never emitted.
				var first sync.Once
				p.newProcess = func() (processFunc, error) {
					return func(dst, page []byte) ([]byte, uint32) {
						first.Do(func() { time.Sleep(100 * time.Millisecond) })
						return page, 0
					}, nil
				}
			}
			var cancel context.CancelFunc
			ctx := context.Background()
			if cancelled {
				ctx, cancel = context.WithCancel(ctx)
			}
			got, pages, err := sum(p, ctx, stop, cancel)
			switch {
			case stop < 0 && (err != nil || got != want):
				t.Errorf("run with views = %v, pages sum %s; want nil and %s (the copied pages')", err, got, want)
			case stop > 0 && err == nil:
				t.Errorf("run with views stopped after %d pages (cancelled %v) = nil, want an error", pages, cancelled)
			}
			if l.lent != 0 || l.views-l.refused == 0 || l.refused == 0 {
				t.Errorf("stop %d, cancelled %v: %d views, %d refused, %d still lent after the run; want some of each and none lent", stop, cancelled, l.views, l.refused, l.lent)
			}
		}
	}
}

func TestIsZero(t *testing.T) {
	for _, size := range []int{4096, 16384, 64 << 10, 128 << 10, 1000} {
		p := make([]byte, size)
		if !isZero(p) {
			t.Errorf("isZero(%d zero bytes) = false", size)
		}
		for _, at := range []int{0, 1, 7, 8, size / 2, size - 9, size - 1} {
			p[at] = 1
			if isZero(p) {
				t.Errorf("isZero(%d bytes, byte %d set) = true", size, at)
			}
			p[at] = 0
		}
	}
}

// failAt is a ReaderAt over b that fails reads past off.
type failAt struct {
	b   []byte
	off int64
}

func (f failAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errors.New("disk error")
	}
	return copy(p, f.b[off:]), nil
}

func TestHashFile(t *testing.T) {
	b := make([]byte, 3<<20+12345)
	for i := range b {
		b[i] = byte(i * 31)
	}
	want := sha256.Sum256(b)
	for _, buf := range []int{4096, 1 << 20, 8 << 20} {
		got, err := hashFile(bytes.NewReader(b), int64(len(b)), buf)
		if err != nil || got != hex.EncodeToString(want[:]) {
			t.Errorf("hashFile(%d-byte buffers) = %s, %v; want %x", buf, got, err, want)
		}
	}
	if _, err := hashFile(failAt{b, 2 << 20}, int64(len(b)), 1<<20); err == nil || !strings.Contains(err.Error(), "disk error") {
		t.Errorf("hashFile(failing at 2 MiB) = %v, want the read error", err)
	}
	if _, err := hashFile(bytes.NewReader(b), int64(len(b))+1, 1<<20); err == nil {
		t.Errorf("hashFile(size past the end) = nil error, want one")
	}
}
