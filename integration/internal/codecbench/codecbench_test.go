// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package codecbench

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/kdumpfile"
)

// testDump writes a kdump file of 8 pages: text, zeros, random, text, …;
// it returns its path and the non-zero pages in order.
func testDump(t *testing.T) (string, []byte) {
	t.Helper()
	const n = 8
	rng := rand.New(rand.NewPCG(1, 2))
	present := bitmap.New(n)
	present.SetRange(0, n)
	path := filepath.Join(t.TempDir(), "vmcore")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := kdumpfile.NewWriter(f, kdumpfile.Params{Codec: kdumpfile.CodecLZO, VMCoreInfo: []byte("PAGESIZE=4096\n")}, present, present)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kdumpfile.NewCompressor(kdumpfile.CodecLZO, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for pfn := range uint64(n) {
		page := make([]byte, 4096)
		switch pfn % 3 {
		case 0:
			copy(page, bytes.Repeat([]byte("the kernel panicked "), 205))
		case 2:
			for i := range page {
				page[i] = byte(rng.Uint32())
			}
		}
		zero := pfn%3 == 1
		if !zero {
			want = append(want, page...)
		}
		out, flags := c.Compress(nil, page)
		if err := w.WritePage(pfn, out, flags, zero); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// TestPagesAndOurs: Pages gives the dump's non-zero pages, decompressed, in
// pfn order; Ours counts the random pages as raw and the others smaller.
func TestPagesAndOurs(t *testing.T) {
	path, want := testDump(t)
	var buf bytes.Buffer
	n, pageSize, err := Pages(path, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want)/4096 || pageSize != 4096 || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("Pages = %d pages of %d, %d bytes (equal %v); want %d pages of 4096", n, pageSize, buf.Len(), bytes.Equal(buf.Bytes(), want), len(want)/4096)
	}
	for _, codec := range []kdumpfile.Codec{kdumpfile.CodecLZO, kdumpfile.CodecSnappy, kdumpfile.CodecZlib, kdumpfile.CodecZstd} {
		r, err := Ours(codec, buf.Bytes(), pageSize)
		if err != nil {
			t.Fatal(err)
		}
		// pfns 0, 3, 6 are text and 2, 5 random: 2 raw pages.
		if r.Raw != 2 || r.Bytes <= 2*4096 || r.Bytes >= 3*4096 || r.Time <= 0 {
			t.Errorf("Ours(%s) = %d raw, %d bytes, %v; want 2 raw and the 3 text pages in under 4096 bytes", codec, r.Raw, r.Bytes, r.Time)
		}
	}
}

func TestParseIncumbent(t *testing.T) {
	rs, err := parseIncumbent([]byte("liblzo2-lzo1x_1 0.141000 57700000 4634\nzlib-level-1 2.5 29000000 2678\n"))
	if err != nil || len(rs) != 2 || rs[0].Name != "liblzo2-lzo1x_1" || rs[0].Time != 141*time.Millisecond || rs[0].Bytes != 57700000 || rs[1].Raw != 2678 {
		t.Fatalf("parseIncumbent = %+v, %v", rs, err)
	}
	for _, bad := range []string{"", "lzo 1 2", "lzo x 2 3", "lzo 0 2 3"} {
		if _, err := parseIncumbent([]byte(bad)); err == nil || !strings.Contains(err.Error(), "codecbench") {
			t.Errorf("parseIncumbent(%q) = %v; want an error", bad, err)
		}
	}
	var out strings.Builder
	Table(&out, 1e9, rs[0], rs)
	if !strings.Contains(out.String(), "zlib-level-1") || !strings.Contains(out.String(), "1.00x") {
		t.Errorf("Table:\n%s", out.String())
	}
}

func TestBest(t *testing.T) {
	r := func(name string, ms int) Result {
		return Result{Name: name, Time: time.Duration(ms) * time.Millisecond, Bytes: 10}
	}
	best, err := Best(nil, []Result{r("liblzo", 30), r("ukdump lzo", 20)})
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range [][]Result{{r("liblzo", 10), r("ukdump lzo", 40)}, {r("liblzo", 50), r("ukdump lzo", 15)}} {
		if best, err = Best(best, round); err != nil {
			t.Fatal(err)
		}
	}
	if want := []Result{r("liblzo", 10), r("ukdump lzo", 15)}; !slices.Equal(best, want) {
		t.Errorf("Best over the rounds = %v, want %v", best, want)
	}
	if _, err := Best(best, []Result{r("liblzo", 1)}); err == nil || !strings.Contains(err.Error(), "a round of 1 results after rounds of 2") {
		t.Errorf("Best(a short round) = %v, want an error", err)
	}
	if _, err := Best(best, []Result{r("ukdump lzo", 1), r("liblzo", 1)}); err == nil || !strings.Contains(err.Error(), "is ukdump lzo, want liblzo") {
		t.Errorf("Best(a round in another order) = %v, want an error", err)
	}
}
