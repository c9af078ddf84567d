// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// memOf returns the physical memory of a synthetic core: paddr → page.
func memOf(t *testing.T, im *vmcore.Image, c *vmcore.Core) map[uint64][]byte {
	t.Helper()
	pages := map[uint64][]byte{}
	for _, l := range c.Loads {
		for off := uint64(0); off < l.Filesz; off += 4096 {
			p := make([]byte, 4096)
			if _, err := im.ReadAt(p, int64(l.Offset+off)); err != nil {
				t.Fatal(err)
			}
			pages[(l.Paddr+off)/4096] = p
		}
	}
	return pages
}

func build(t *testing.T) (*vmcore.Image, *vmcore.Core, map[uint64][]byte) {
	t.Helper()
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0x1000, 1 << 20}, {0x10000000, 5<<20 + 8192}}, Seed: 7}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	return im, c, memOf(t, im, c)
}

func collectTo(t *testing.T, im *vmcore.Image, c *vmcore.Core, o collect.Options) (string, collect.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := collect.Collect(context.Background(), im, c, f, o)
	if err != nil {
		t.Fatalf("Collect(%+v) = %v", o, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(data)) {
		t.Errorf("Collect(%+v) result %d bytes sha256 %s; the file has %d bytes sha256 %x", o, res.Bytes, res.SHA256, len(data), sum)
	}
	return path, res
}

func TestCollectKdump(t *testing.T) {
	im, c, mem := build(t)
	for _, codec := range []string{"zstd", "zlib", "snappy", "none"} {
		for _, level := range []int{0, 1} {
			t.Run(codec, func(t *testing.T) {
				path, res := collectTo(t, im, c, collect.Options{Format: "kdump", Codec: codec, DumpLevel: level, Workers: 3})
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				kf, err := kdumpfile.Open(f)
				if err != nil {
					t.Fatalf("kdumpfile.Open = %v", err)
				}
				if kf.Incomplete() || string(kf.Codec()) != codec {
					t.Errorf("incomplete %v, codec %s", kf.Incomplete(), kf.Codec())
				}
				if got := kf.Present().Count(); got != uint64(len(mem)) || res.Pages.Total != got {
					t.Errorf("present pages %d, result %d, want %d", got, res.Pages.Total, len(mem))
				}
				if level == 1 && res.Pages.Zero == 0 {
					t.Errorf("no zero pages found at dump level 1")
				}
				buf := make([]byte, 4096)
				for pfn, want := range mem {
					if err := kf.ReadPage(pfn, buf); err != nil {
						t.Fatalf("ReadPage(%#x) = %v", pfn, err)
					}
					if !bytes.Equal(buf, want) {
						t.Fatalf("page %#x differs", pfn)
					}
				}
				if info := vmcore.ParseInfo(kf.VMCoreInfo()); info.OSRelease() != "6.1.0-test-amd64" {
					t.Errorf("VMCOREINFO in the dump: %q", kf.VMCoreInfo())
				}
			})
		}
	}
}

func TestCollectFlat(t *testing.T) {
	im, c, _ := build(t)
	direct, _ := collectTo(t, im, c, collect.Options{Format: "kdump", Codec: "zlib", DumpLevel: 1, Workers: 2})
	flat, _ := collectTo(t, im, c, collect.Options{Format: "flat", Codec: "zlib", DumpLevel: 1, Workers: 2})
	in, err := os.Open(flat)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if !kdumpfile.IsFlattened(in) {
		t.Fatalf("IsFlattened(flat output) = false")
	}
	outPath := filepath.Join(t.TempDir(), "reassembled")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := kdumpfile.Reassemble(in, out); err != nil {
		t.Fatalf("Reassemble = %v", err)
	}
	out.Close()
	a, _ := os.ReadFile(direct)
	b, _ := os.ReadFile(outPath)
	if !bytes.Equal(a, b) {
		t.Errorf("reassembled flat output (%d bytes) differs from the direct kdump file (%d bytes)", len(b), len(a))
	}
}

func TestCollectELFExcludingZero(t *testing.T) {
	im, c, mem := build(t)
	path, res := collectTo(t, im, c, collect.Options{Format: "elf", DumpLevel: 1, Workers: 2})
	data, _ := os.ReadFile(path)
	oc, err := vmcore.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("vmcore.Open(output) = %v", err)
	}
	if oc.Info == nil || oc.CPUs() != c.CPUs() {
		t.Errorf("notes lost: info %v, cpus %d", oc.Info, oc.CPUs())
	}
	if int64(len(data)) >= c.Size || res.Pages.Zero == 0 {
		t.Errorf("output %d bytes, source %d, zero pages %d: nothing excluded", len(data), c.Size, res.Pages.Zero)
	}
	// Every page reads back: from the file where it has data, as zeros in
	// the p_memsz tails.
	seen := map[uint64]bool{}
	for _, l := range oc.Loads {
		for off := uint64(0); off < l.Memsz; off += 4096 {
			pfn := (l.Paddr + off) / 4096
			got := make([]byte, 4096)
			if off < l.Filesz {
				copy(got, data[l.Offset+off:l.Offset+off+4096])
			}
			if want, ok := mem[pfn]; !ok || !bytes.Equal(got, want) {
				t.Fatalf("pfn %#x differs (in source: %v)", pfn, ok)
			}
			seen[pfn] = true
		}
	}
	if len(seen) != len(mem) {
		t.Errorf("output covers %d pages, source %d", len(seen), len(mem))
	}
}

// A core whose VMCOREINFO lacks what the mem_map walk needs is still dumped
// at dump level 31: the page classes are kept, zero pages excluded, and a
// warning says so.
func TestCollectClassesUnavailable(t *testing.T) {
	im, c, mem := build(t)
	path, res := collectTo(t, im, c, collect.Options{Format: "kdump", Codec: "zlib", DumpLevel: 31})
	if len(res.Warnings) == 0 || res.Pages.Dumped != uint64(len(mem)) {
		t.Errorf("Result = %+v, want every page dumped and a warning", res)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := kdumpfile.Open(f); err != nil {
		t.Errorf("kdumpfile.Open = %v", err)
	}
}

// stream is a sink that cannot seek: it hides the file's WriterAt and
// ReaderAt.
type stream struct{ w io.Writer }

func (s stream) Write(p []byte) (int, error) { return s.w.Write(p) }

// The kdump format on a sink that cannot seek is written flattened, as the
// flat format would be, and the result says so.
func TestCollectKdumpOnStream(t *testing.T) {
	im, c, _ := build(t)
	o := collect.Options{Format: collect.FormatKdump, Codec: "zlib", DumpLevel: 1, Workers: 2, Now: func() time.Time { return time.Unix(1, 0) }}
	var got bytes.Buffer
	res, err := collect.Collect(context.Background(), im, c, stream{&got}, o)
	if err != nil || res.Format != collect.FormatFlat {
		t.Fatalf("Collect(kdump to a stream) = %+v, %v; want format flat", res, err)
	}
	o.Format = collect.FormatFlat
	var want bytes.Buffer
	if _, err := collect.Collect(context.Background(), im, c, stream{&want}, o); err != nil {
		t.Fatalf("Collect(flat) = %v", err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("kdump to a stream (%d bytes) differs from flat (%d bytes)", got.Len(), want.Len())
	}
}

// sized is a sink that wants the file's size before its data, as the legacy
// scp target does.
type sized struct {
	bytes.Buffer
	sizes   []int64
	tooLate bool // SetSize came after data
}

func (s *sized) SetSize(n int64) error {
	s.sizes = append(s.sizes, n)
	s.tooLate = s.tooLate || s.Len() > 0
	return nil
}

// The ELF formats tell the sink their size before the first byte; the
// compressed ones, whose size nobody knows before the end, do not.
func TestCollectSetSize(t *testing.T) {
	im, c, _ := build(t)
	for _, tt := range []struct {
		o    collect.Options
		want bool
	}{
		{collect.Options{Format: collect.FormatELF}, true},
		{collect.Options{Format: collect.FormatELF, DumpLevel: 1}, true},
		{collect.Options{Format: collect.FormatFlat, DumpLevel: 1}, false},
		{collect.Options{Format: collect.FormatKdump, DumpLevel: 1}, false},
	} {
		var s sized
		res, err := collect.Collect(context.Background(), im, c, &s, tt.o)
		if err != nil {
			t.Fatalf("Collect(%+v) = %v", tt.o, err)
		}
		switch {
		case !tt.want && len(s.sizes) != 0:
			t.Errorf("Collect(%+v): SetSize%v, want no call", tt.o, s.sizes)
		case tt.want && (len(s.sizes) != 1 || s.sizes[0] != int64(s.Len()) || res.Bytes != int64(s.Len()) || s.tooLate):
			t.Errorf("Collect(%+v): SetSize%v (after data: %v) for %d bytes written, want one call with that size first", tt.o, s.sizes, s.tooLate, s.Len())
		}
	}
}
