// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/memmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// TestMemmap checks memmap.Exclude against makedumpfile: for each dump
// level, the 2nd bitmap of makedumpfile's kdump-compressed file of the e2e
// core must equal ours byte for byte. In that format makedumpfile keeps zero
// pages in the 2nd bitmap (dump level bit 1 acts when writing), and so does
// Exclude.
func TestMemmap(t *testing.T) {
	if _, err := exec.LookPath("makedumpfile"); err != nil {
		t.Fatalf("makedumpfile not found (%v): run scripts/deps.sh", err)
	}
	e := openELF(t)
	src, err := vmcore.OpenFile(e.path)
	if err != nil {
		t.Fatalf("vmcore.OpenFile(%s) = %v", e.path, err)
	}
	t.Cleanup(func() { src.Close() })
	k, err := dumpmem.NewKernel(dumpmem.FromELF(src, e.core), e.core.Info, e.core.Loads)
	if err != nil {
		t.Fatalf("dumpmem.NewKernel() = %v", err)
	}
	maxPFN := e.present.Len()

	for _, level := range []int{2, 4, 8, 16, 31} {
		t.Run(fmt.Sprintf("d%d", level), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "dump")
			start := time.Now()
			if b, err := exec.Command("makedumpfile", "-c", "-d", fmt.Sprint(level), e.path, out).CombinedOutput(); err != nil {
				t.Fatalf("makedumpfile -c -d %d = %v:\n%s", level, err, b)
			}
			t.Logf("makedumpfile -c -d %d: %v", level, time.Since(start).Round(time.Millisecond))
			fd, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close()
			f, err := kdumpfile.Open(fd)
			if err != nil {
				t.Fatalf("kdumpfile.Open(%s) = %v", out, err)
			}
			if got, want := f.MaxPFN(), maxPFN; got != want {
				t.Fatalf("makedumpfile max pfn = %#x; ours %#x", got, want)
			}
			if bad, ok := firstDiff(e.present, f.Present()); !ok {
				t.Fatalf("1st bitmaps differ first at pfn %#x (ours %v)", bad, e.present.Get(bad))
			}

			start = time.Now()
			got, cnt, err := memmap.Exclude(k, level, maxPFN, e.present)
			if err != nil {
				t.Fatalf("memmap.Exclude(level %d) = %v", level, err)
			}
			t.Logf("memmap.Exclude(level %d): %v, %+v; %d dumpable, makedumpfile %d",
				level, time.Since(start).Round(time.Millisecond), cnt, got.Count(), f.Dumpable().Count())
			if bad, ok := firstDiff(got, f.Dumpable()); !ok {
				n := 0
				for p := range maxPFN {
					if got.Get(p) != f.Dumpable().Get(p) {
						n++
					}
				}
				t.Errorf("2nd bitmap at level %d differs from makedumpfile's at %d pfns, first %#x (ours %v)", level, n, bad, got.Get(bad))
			}
		})
	}
}

// firstDiff returns the first pfn whose bit differs between a and b.
func firstDiff(a, b *bitmap.Bitmap) (uint64, bool) {
	ab, bb := a.Bytes(), b.Bytes()
	for i := range max(len(ab), len(bb)) {
		var x, y byte
		if i < len(ab) {
			x = ab[i]
		}
		if i < len(bb) {
			y = bb[i]
		}
		if x != y {
			for j := range 8 {
				if (x^y)>>j&1 != 0 {
					return uint64(i)*8 + uint64(j), false
				}
			}
		}
	}
	return 0, true
}
