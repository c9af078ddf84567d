// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"testing"

	"github.com/ukdump/ukdump/internal/bitmap"
)

func BenchmarkCompress(b *testing.B) {
	pages := testPages(testPageSize)
	for _, codec := range Codecs {
		for _, kind := range []string{"text", "mixed", "sparse", "random"} {
			b.Run(string(codec)+"/"+kind, func(b *testing.B) {
				c, err := NewCompressor(codec, testPageSize)
				if err != nil {
					b.Fatal(err)
				}
				page := pages[kind]
				var dst []byte
				b.SetBytes(testPageSize)
				for b.Loop() {
					out, flags := c.Compress(dst, page)
					if flags != 0 {
						dst = out
					}
				}
			})
		}
	}
}

// discardAt is an io.WriterAt that drops everything.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// BenchmarkWritePage measures the writer alone: descriptors, caches and
// flushes for pages already compressed to a quarter.
func BenchmarkWritePage(b *testing.B) {
	const n = 1 << 18 // 1 GiB of 4 KiB pages
	present := bitmap.New(n)
	present.SetRange(0, n)
	data := make([]byte, testPageSize/4)
	b.SetBytes(n * testPageSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(discardAt{}, Params{Codec: CodecZstd, PageSize: testPageSize}, present, present)
		if err != nil {
			b.Fatal(err)
		}
		for pfn := range uint64(n) {
			if err := w.WritePage(pfn, data, FlagZstd, false); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
