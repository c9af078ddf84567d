// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// A dump written in windows of 32768 pfns (a core of three) is the same,
// byte for byte, as one written in a single window, in every format; the
// flattened stream writes every offset once but the header's.
func TestWindowsChangeNothing(t *testing.T) {
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0x1000, 1 << 20}, {0x7ff0000, 1 << 20}, {0x10000000, 5<<20 + 8192}}, Seed: 9}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{Format: FormatKdump, Codec: "zstd", DumpLevel: 1},
		{Format: FormatKdump, Codec: "none", DumpLevel: 0},
		{Format: FormatFlat, Codec: "zlib", DumpLevel: 1},
		{Format: FormatELF, DumpLevel: 1},
	} {
		var outs [][]byte
		for _, win := range []uint64{0, 32768} {
			o.window, o.Workers = win, 2
			path := filepath.Join(t.TempDir(), "dump")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var w io.Writer = f
			if o.Format == FormatFlat {
				w = struct{ io.Writer }{f}
			}
			if _, err := Collect(context.Background(), im, c, w, o); err != nil {
				t.Fatalf("Collect(%+v) = %v", o, err)
			}
			f.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, b)
		}
		if o.Format == FormatFlat {
			checkRecords(t, outs[1])
			// The streams differ in their records; the files they make do not.
			for i, b := range outs {
				var f memFile
				if err := kdumpfile.Reassemble(bytes.NewReader(b), &f); err != nil {
					t.Fatalf("Reassemble = %v", err)
				}
				outs[i] = f.b
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: %d bytes in one window, %d bytes in windows of 32768 pfns: they differ", o.Format, len(outs[0]), len(outs[1]))
		}
	}
}

// checkRecords checks that a flattened stream has one record per offset,
// but for the header's (rewritten last, when the dump is complete).
func checkRecords(t *testing.T, flat []byte) {
	t.Helper()
	seen := map[uint64]bool{}
	for b := flat[4096:]; len(b) >= 16; {
		off, size := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
		if off == ^uint64(0) {
			return
		}
		if seen[off] && off != 0 {
			t.Errorf("flattened stream: a second record for offset %#x", off)
		}
		seen[off] = true
		b = b[16+size:]
	}
	t.Errorf("flattened stream without its end record")
}

// memFile is an io.WriterAt in memory.
type memFile struct{ b []byte }

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(f.b) {
		f.b = append(f.b, make([]byte, n-len(f.b))...)
	}
	return copy(f.b[off:], p), nil
}
