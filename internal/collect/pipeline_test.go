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
	"runtime"
	"slices"
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
