// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

func open(t *testing.T) (*vmcore.Image, *vmcore.Core, []byte) {
	t.Helper()
	im, err := vmcoretest.Core{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, im.Size())
	im.ReadAt(want, 0)
	return im, c, want
}

func TestCollectELF(t *testing.T) {
	im, c, want := open(t)
	var out bytes.Buffer
	var calls []collect.Progress
	res, err := collect.Collect(context.Background(), im, c, &out, collect.Options{
		ChunkSize: 1 << 20,
		Progress:  func(p collect.Progress) { calls = append(calls, p) },
	})
	if err != nil {
		t.Fatalf("Collect = %v", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from the source core")
	}
	sum := sha256.Sum256(want)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(want)) {
		t.Errorf("Result = %+v, want %d bytes sha256 %x", res, len(want), sum)
	}
	if len(calls) < 4 || calls[len(calls)-1].Done != int64(len(want)) {
		t.Errorf("progress calls = %d, last %+v", len(calls), calls[len(calls)-1])
	}
}

type failWriter struct{ n, limit int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		m := f.limit - f.n
		f.n = f.limit
		return m, errors.New("no space left on device")
	}
	f.n += len(p)
	return len(p), nil
}

func TestCollectWriteError(t *testing.T) {
	im, c, want := open(t)
	w := &failWriter{limit: 1<<20 + 100}
	res, err := collect.Collect(context.Background(), im, c, w, collect.Options{ChunkSize: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("Collect = %v, want the write error", err)
	}
	sum := sha256.Sum256(want[:w.limit])
	if res.Bytes != int64(w.limit) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("Result = %+v, want %d bytes written and their hash", res, w.limit)
	}
}

func TestCollectCancelled(t *testing.T) {
	im, c, _ := open(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("deadline 30m passed"))
	_, err := collect.Collect(ctx, im, c, io.Discard, collect.Options{})
	if err == nil || !strings.Contains(err.Error(), "deadline 30m passed") {
		t.Errorf("Collect = %v, want the cancel cause", err)
	}
}

func TestProgressString(t *testing.T) {
	p := collect.Progress{Done: 512 << 20, Total: 1 << 30, Elapsed: 5 * time.Second}
	want := "512.0 MiB / 1.0 GiB (50%) 107.4 MB/s ETA 5s"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
