// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// BenchmarkCollect writes a 64 MiB synthetic core (a quarter zero pages, the
// rest random) in every format, on two workers: the streams to io.Discard,
// the others to a file (truncated before each run).
func BenchmarkCollect(b *testing.B) {
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0x100000, 16 << 20}, {0x10000000, 48 << 20}}, Seed: 5}.Build()
	if err != nil {
		b.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		o      collect.Options
		stream bool
	}{
		{"elf-d0", collect.Options{Format: collect.FormatELF}, true},
		{"elf-d1", collect.Options{Format: collect.FormatELF, DumpLevel: 1}, false},
		{"kdump-zstd-d1", collect.Options{Format: collect.FormatKdump, Codec: "zstd", DumpLevel: 1}, false},
		{"kdump-none-d0", collect.Options{Format: collect.FormatKdump, Codec: "none"}, false},
		{"flat-zstd-d1", collect.Options{Format: collect.FormatFlat, Codec: "zstd", DumpLevel: 1}, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			tt.o.Workers = 2
			f, err := os.Create(filepath.Join(b.TempDir(), "dump"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(c.MemoryBytes())
			b.ReportAllocs()
			for b.Loop() {
				var w io.Writer = io.Discard
				if !tt.stream {
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					w = f
				}
				if _, err := collect.Collect(context.Background(), im, c, w, tt.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
