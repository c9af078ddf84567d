// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/ukdump/ukdump/internal/bitmap"
)

// rankStep is the number of pfns per entry of the reader's rank index (as
// crash's valid_pages[]): finding a descriptor popcounts at most 512 bytes.
const rankStep = 4096

// File is an open kdump-compressed file. Its methods are safe for
// concurrent use.
type File struct {
	r                 io.ReaderAt
	hdr               Header
	sub               SubHeader
	maxPFN            uint64
	present, dumpable *bitmap.Bitmap
	notes, info       []byte
	descOff           int64
	rank              []uint64 // rank[i]: dumpable pfns below i*rankStep

	mu   sync.Mutex
	dec  decompressor
	data []byte // the stored bytes of the page being read
}

// Open reads and checks the headers, notes and bitmaps of the
// kdump-compressed file in r. Malformed input gives an error wrapping
// ErrFormat (and io.ErrUnexpectedEOF when the file is truncated); a
// flattened stream gives ErrFlattened; a failed read gives an error
// wrapping the reader's.
func Open(r io.ReaderAt) (*File, error) {
	hb := make([]byte, headerSize)
	if n, err := r.ReadAt(hb, 0); n < headerSize {
		err = readErr("header", 0, uint64(n), headerSize, err)
		if errors.Is(err, ErrFormat) && n >= 32 && isFlatHeader(hb) {
			return nil, fmt.Errorf("kdumpfile: %w", ErrFlattened)
		}
		return nil, fmt.Errorf("kdumpfile: %w", err)
	}
	f := &File{r: r, hdr: unmarshalHeader(hb)}
	h := &f.hdr
	if h.Signature != Signature {
		if isFlatHeader(hb) {
			return nil, fmt.Errorf("kdumpfile: %w", ErrFlattened)
		}
		return nil, formatErr("signature %q, want %q", h.Signature, Signature)
	}
	if h.Version < 1 {
		return nil, formatErr("header_version %d: no sub-header (old diskdump files are not supported)", h.Version)
	}
	bs := int64(h.BlockSize)
	if !validBlockSize(int(h.BlockSize)) {
		return nil, formatErr("block_size %d is not a power of two in [%d, %d]", h.BlockSize, minBlockSize, maxBlockSize)
	}
	if h.SubHdrSize < 1 {
		return nil, formatErr("sub_hdr_size %d blocks: no room for the sub-header", h.SubHdrSize)
	}
	f.dec.pageSize = int(bs)

	sb := make([]byte, subHeaderSize)
	if n, err := r.ReadAt(sb, bs); n < subHeaderSize {
		return nil, fmt.Errorf("kdumpfile: %w", readErr("sub-header", bs, uint64(n), subHeaderSize, err))
	}
	f.sub = unmarshalSubHeader(sb)
	s := &f.sub
	// Fields a version does not have are not to be trusted.
	if h.Version < 6 {
		s.StartPFN64, s.EndPFN64, s.MaxMapnr64 = 0, 0, 0
	}
	if h.Version < 5 {
		s.OffsetEraseInfo, s.SizeEraseInfo = 0, 0
	}
	if h.Version < 4 {
		s.OffsetNote, s.SizeNote = 0, 0
	}
	if h.Version < 3 {
		s.OffsetVMCoreInfo, s.SizeVMCoreInfo = 0, 0
	}
	if h.Version < 2 {
		s.Split, s.StartPFN, s.EndPFN = 0, 0, 0
	}
	f.maxPFN = uint64(h.MaxMapnr)
	if h.Version >= 6 {
		f.maxPFN = s.MaxMapnr64
	}
	if f.maxPFN == 0 || f.maxPFN > maxMaxMapnr {
		return nil, formatErr("max_mapnr %#x out of range (1 to %#x)", f.maxPFN, uint64(maxMaxMapnr))
	}
	if s.Split != 0 {
		return nil, formatErr("a --split part file (pfns %#x-%#x) is not supported", s.StartPFN64, s.EndPFN64)
	}

	// Bitmaps: two equal halves; an area too small for two is one bitmap
	// serving as both (old diskdump, as crash reads it).
	bitmapLen := bitmap.ByteLen(f.maxPFN)
	area := uint64(h.BitmapBlocks) * uint64(bs)
	half := divUp(bitmapLen, uint64(bs)) * uint64(bs)
	off1 := (1 + uint64(h.SubHdrSize)) * uint64(bs)
	off2 := off1
	switch {
	case area >= 2*half:
		off2 = off1 + uint64(h.BitmapBlocks/2)*uint64(bs)
	case area >= bitmapLen:
	default:
		return nil, formatErr("bitmap_blocks %d (%d bytes) too small for max_mapnr %#x", h.BitmapBlocks, area, f.maxPFN)
	}
	f.descOff = int64(off1 + area)
	b1, err := readFull(r, int64(off1), bitmapLen, "1st bitmap")
	if err != nil {
		return nil, err
	}
	f.present = bitmap.FromBytes(b1, f.maxPFN)
	if off2 == off1 {
		f.dumpable = f.present
	} else {
		b2, err := readFull(r, int64(off2), bitmapLen, "2nd bitmap")
		if err != nil {
			return nil, err
		}
		f.dumpable = bitmap.FromBytes(b2, f.maxPFN)
	}

	if s.OffsetNote != 0 && s.SizeNote != 0 {
		if s.SizeNote > maxNoteSize || s.OffsetNote < 0 {
			return nil, formatErr("notes: %d bytes at %#x out of range", s.SizeNote, s.OffsetNote)
		}
		if f.notes, err = readFull(r, s.OffsetNote, s.SizeNote, "notes"); err != nil {
			return nil, err
		}
	}
	if s.OffsetVMCoreInfo != 0 && s.SizeVMCoreInfo != 0 {
		if s.SizeVMCoreInfo > maxNoteSize || s.OffsetVMCoreInfo < 0 {
			return nil, formatErr("VMCOREINFO: %d bytes at %#x out of range", s.SizeVMCoreInfo, s.OffsetVMCoreInfo)
		}
		if f.info, err = readFull(r, s.OffsetVMCoreInfo, s.SizeVMCoreInfo, "VMCOREINFO"); err != nil {
			return nil, err
		}
	}

	bm := f.dumpable.Bytes()
	f.rank = make([]uint64, divUp(f.maxPFN, rankStep)+1)
	for i := 1; i < len(f.rank); i++ {
		start := uint64(i-1) * rankStep / 8
		f.rank[i] = f.rank[i-1] + bitmap.OnesCount(bm[start:min(start+rankStep/8, uint64(len(bm)))])
	}
	return f, nil
}

// readFull reads n bytes at off, growing its buffer only as data arrives, so
// a corrupt size fails at the end of the file instead of allocating it all.
func readFull(r io.ReaderAt, off int64, n uint64, what string) ([]byte, error) {
	if off < 0 || n > math.MaxInt64-uint64(off) {
		return nil, formatErr("%s: %d bytes at %#x out of range", what, n, off)
	}
	const chunk = 1 << 20
	b := make([]byte, 0, min(n, chunk))
	for uint64(len(b)) < n {
		k := int(min(n-uint64(len(b)), chunk))
		b = slices.Grow(b, k)
		m, err := r.ReadAt(b[len(b):len(b)+k], off+int64(len(b)))
		b = b[:len(b)+m]
		if m < k {
			return nil, fmt.Errorf("kdumpfile: %w", readErr(what, off, uint64(len(b)), n, err))
		}
	}
	return b, nil
}

// Header is the main header.
func (f *File) Header() Header { return f.hdr }

// SubHeader is the sub-header (fields the header version lacks are 0).
func (f *File) SubHeader() SubHeader { return f.sub }

// Incomplete reports whether the dump is marked incomplete (StatusIncomplete):
// its writing failed and some pages are missing.
func (f *File) Incomplete() bool { return f.hdr.Status&StatusIncomplete != 0 }

// Codec is the compression the header announces. Pages may still be raw.
func (f *File) Codec() Codec { return codecOfStatus(f.hdr.Status) }

// PageSize is the block size: the size of a page.
func (f *File) PageSize() int { return int(f.hdr.BlockSize) }

// MaxPFN is max_mapnr: the bitmaps cover pfns [0, MaxPFN).
func (f *File) MaxPFN() uint64 { return f.maxPFN }

// Present is the 1st bitmap: the pfns that are RAM.
func (f *File) Present() *bitmap.Bitmap { return f.present }

// Dumpable is the 2nd bitmap: the pfns that are in the dump.
func (f *File) Dumpable() *bitmap.Bitmap { return f.dumpable }

// NumDumpable is the number of pages in the dump (page descriptors).
func (f *File) NumDumpable() uint64 { return f.rank[len(f.rank)-1] }

// Notes are the copy of the core's ELF notes, or nil.
func (f *File) Notes() []byte { return f.notes }

// VMCoreInfo is the VMCOREINFO text, or nil.
func (f *File) VMCoreInfo() []byte { return f.info }

// index is the position of pfn's descriptor: the dumpable pfns below it.
func (f *File) index(pfn uint64) uint64 {
	bm := f.dumpable.Bytes()
	i := pfn / rankStep
	start := i * rankStep / 8
	n := f.rank[i] + bitmap.OnesCount(bm[start:pfn/8])
	if r := pfn & 7; r != 0 {
		n += bitmap.OnesCount([]byte{bm[pfn/8] & (1<<r - 1)})
	}
	return n
}

// PageDesc returns the descriptor of a dumpable pfn. A descriptor past the
// end of the file reads as zeros, like a hole: offset 0, never written.
func (f *File) PageDesc(pfn uint64) (PageDesc, error) {
	if !f.dumpable.Get(pfn) {
		if pfn >= f.maxPFN {
			return PageDesc{}, fmt.Errorf("kdumpfile: pfn %#x: %w (max_mapnr %#x)", pfn, ErrExcluded, f.maxPFN)
		}
		return PageDesc{}, fmt.Errorf("kdumpfile: pfn %#x: %w", pfn, ErrExcluded)
	}
	off := f.descOff + int64(f.index(pfn))*descSize
	var b [descSize]byte
	n, err := f.r.ReadAt(b[:], off)
	if n < descSize {
		if n > 0 || !errors.Is(err, io.EOF) {
			return PageDesc{}, fmt.Errorf("kdumpfile: pfn %#x: %w", pfn, readErr("page descriptor", off, uint64(n), descSize, err))
		}
		clear(b[:])
	}
	return getPageDesc(b[:]), nil
}

// ReadPage reads the page at pfn into buf (at least PageSize bytes). It
// returns an error wrapping ErrExcluded for a pfn not in the dump,
// ErrIncomplete for a page an incomplete dump does not have, ErrFormat for
// malformed or truncated data, and the reader's error for a failed read.
func (f *File) ReadPage(pfn uint64, buf []byte) error {
	bs := int(f.hdr.BlockSize)
	if len(buf) < bs {
		return fmt.Errorf("kdumpfile: ReadPage(%#x): buffer of %d bytes for a %d-byte page", pfn, len(buf), bs)
	}
	d, err := f.PageDesc(pfn)
	if err != nil {
		return err
	}
	if d.Offset == 0 {
		return fmt.Errorf("kdumpfile: pfn %#x: %w", pfn, ErrIncomplete)
	}
	if d.Offset < 0 || d.Size == 0 || d.Size > uint32(bs) {
		return formatErr("pfn %#x: descriptor with offset %#x, size %d (block size %d)", pfn, d.Offset, d.Size, bs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if cap(f.data) < bs {
		f.data = make([]byte, bs)
	}
	data := f.data[:d.Size]
	if n, err := f.r.ReadAt(data, d.Offset); n < len(data) {
		err = readErr("page data", d.Offset, uint64(n), uint64(len(data)), err)
		if f.Incomplete() && errors.Is(err, ErrFormat) {
			// Its writing stopped before the data: not a malformed file.
			return fmt.Errorf("kdumpfile: pfn %#x: data at %#x: %w", pfn, d.Offset, ErrIncomplete)
		}
		return fmt.Errorf("kdumpfile: pfn %#x: %w", pfn, err)
	}
	if err := f.dec.decompress(buf[:bs], data, d.Flags); err != nil {
		return fmt.Errorf("kdumpfile: pfn %#x: data at %#x (%d bytes, flags %#x): %w: %w", pfn, d.Offset, d.Size, d.Flags, ErrFormat, err)
	}
	return nil
}

// Close releases the decoders. It does not close the underlying reader.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dec.close()
	return nil
}
