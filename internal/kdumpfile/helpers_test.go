// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

const testPageSize = 4096

// memFile is an in-memory file: an io.WriterAt and io.ReaderAt whose unwritten
// parts read as zeros.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fullDisk is a memFile on a file system with room for quota blocks of
// 4 KiB: like a real one, a write that needs a block beyond the quota
// writes what fits and fails with ENOSPC, while rewriting allocated blocks
// (the header) still works.
type fullDisk struct {
	memFile
	quota     int
	allocated map[int64]bool
}

func newFullDisk(quotaBlocks int) *fullDisk {
	return &fullDisk{quota: quotaBlocks, allocated: map[int64]bool{}}
}

func (d *fullDisk) WriteAt(p []byte, off int64) (int, error) {
	const bs = 4096
	n := len(p)
	for blk := off / bs; blk*bs < off+int64(len(p)); blk++ {
		if d.allocated[blk] {
			continue
		}
		if len(d.allocated) == d.quota {
			n = int(max(blk*bs-off, 0))
			break
		}
		d.allocated[blk] = true
	}
	d.memFile.WriteAt(p[:n], off)
	if n < len(p) {
		return n, fmt.Errorf("write at %#x: %w", off+int64(n), syscall.ENOSPC)
	}
	return n, nil
}

// testCore is a synthetic core with its raw notes and its memory by pfn.
type testCore struct {
	core    *vmcore.Core
	im      *vmcore.Image
	notes   []byte
	present *bitmap.Bitmap
	maxPFN  uint64
}

// newTestCore builds a core whose memory mixes zero pages, random pages
// (which do not compress) and repetitive text (which does). Segments are
// (paddr, size) pairs; sizes and addresses need not be page-aligned.
func newTestCore(t testing.TB, seed uint64, segs [][2]uint64) *testCore {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	var ss []vmcore.Segment
	for _, s := range segs {
		mem := make([]byte, s[1])
		for p := 0; p < len(mem); p += testPageSize {
			page := mem[p:min(p+testPageSize, len(mem))]
			switch rng.IntN(3) {
			case 0: // zero
			case 1:
				for i := range page {
					page[i] = byte(rng.Uint32())
				}
			case 2:
				line := fmt.Sprintf("pfn %#x of segment %#x: some kernel text. ", (s[0]+uint64(p))/testPageSize, s[0])
				for i := range page {
					page[i] = line[i%len(line)]
				}
			}
		}
		ss = append(ss, vmcore.Segment{Vaddr: 0xffff888000000000 + s[0], Paddr: s[0], Filesz: s[1], Memsz: s[1], Src: bytes.NewReader(mem)})
	}
	var notes []vmcore.Note
	for i := range 2 {
		d := make([]byte, 336)
		d[32] = byte(i + 1)
		notes = append(notes, vmcore.Note{Name: vmcore.NoteCore, Type: vmcore.NTPrStatus, Desc: d})
	}
	notes = append(notes, vmcore.Note{Name: vmcore.NoteVMCoreInfo, Desc: []byte(vmcoretest.Info + "NUMBER(phys_base)=350224384\n")})
	im := vmcore.NewImage(notes, ss, testPageSize)
	return coreFromImage(t, im)
}

func coreFromImage(t testing.TB, im *vmcore.Image) *testCore {
	t.Helper()
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatalf("vmcore.Open = %v", err)
	}
	tc := &testCore{core: c, im: im, notes: c.NoteBytes}
	// max_mapnr: the highest PT_LOAD end rounded up to a page; RAM: each
	// PT_LOAD's pfns with both ends rounded down (research 1.2, 1.4).
	for _, p := range c.Loads {
		tc.maxPFN = max(tc.maxPFN, divUp(p.Paddr+p.Memsz, testPageSize))
	}
	tc.present = bitmap.New(tc.maxPFN)
	for _, p := range c.Loads {
		tc.present.SetRange(p.Paddr/testPageSize, (p.Paddr+p.Memsz)/testPageSize)
	}
	return tc
}

// page reads the page at pfn from the PT_LOAD that covers it.
func (tc *testCore) page(t testing.TB, pfn uint64) []byte {
	t.Helper()
	b := make([]byte, testPageSize)
	addr := pfn * testPageSize
	for _, p := range tc.core.Loads {
		if addr+testPageSize <= p.Paddr || addr >= p.Paddr+p.Memsz {
			continue
		}
		// /proc/vmcore layout: the file holds whole pages around a segment.
		off := int64(p.Offset) - int64(p.Paddr-addr)
		if _, err := tc.im.ReadAt(b, off); err != nil {
			t.Fatalf("reading pfn %#x at %#x: %v", pfn, off, err)
		}
		return b
	}
	t.Fatalf("pfn %#x is in no PT_LOAD", pfn)
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// writeDump writes the dump of the core's dumpable pages as the collector
// does, returning the first error (after Abort) or Close's.
func (tc *testCore) writeDump(t testing.TB, w io.WriterAt, p Params, dumpable *bitmap.Bitmap) error {
	t.Helper()
	p.Notes = tc.notes
	wr, err := NewWriter(w, p, tc.present, dumpable)
	if err != nil {
		return err
	}
	codec := p.Codec
	if codec == "" {
		codec = CodecNone
	}
	c, err := NewCompressor(codec, testPageSize)
	if err != nil {
		t.Fatalf("NewCompressor(%q) = %v", codec, err)
	}
	var dst []byte
	for pfn, ok := dumpable.NextSet(0); ok; pfn, ok = dumpable.NextSet(pfn + 1) {
		page := tc.page(t, pfn)
		zero := isZero(page)
		var out []byte
		var flags uint32
		if !zero || p.DumpLevel&1 == 0 {
			out, flags = c.Compress(dst, page)
			if flags != 0 {
				dst = out
			}
		}
		if err := wr.WritePage(pfn, out, flags, zero); err != nil {
			if aerr := wr.Abort(err); aerr != nil {
				t.Fatalf("Abort(%v) = %v", err, aerr)
			}
			return err
		}
	}
	return wr.Close()
}
