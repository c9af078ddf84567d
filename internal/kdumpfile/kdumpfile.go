// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package kdumpfile writes and reads the kdump-compressed ("KDUMP   ") dump
// format of makedumpfile and crash, and its flattened stream form.
//
// A kdump-compressed file is laid out in blocks of the page size:
//
//	block 0                  disk_dump_header (464 bytes)
//	block 1                  kdump_sub_header (104 bytes), then the core's ELF notes verbatim
//	1+sub_hdr_size           1st bitmap: pfns that are RAM
//	...+bitmap_blocks/2      2nd bitmap: pfns that are in the dump
//	1+sub_hdr_size+bb        page_desc_t[num_dumpable] (24 bytes each, in pfn order)
//	after the descriptors    page data, (compressed) pages back to back
//
// All fields are little-endian (x86_64). The layout and every field are
// described in research/makedumpfile.md section 1; makedumpfile and crash are
// the specification and the test oracles, not the source of this code.
package kdumpfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/cstr"
)

// Signature is the kdump-compressed file signature ("KDUMP" and 3 spaces).
const Signature = "KDUMP   "

// HeaderVersion is the disk_dump_header version this package writes: 6 has
// the 64-bit pfn fields in the sub-header.
const HeaderVersion = 6

// Status bits of the header, and the compression flags of a page descriptor
// (the same values: DUMP_DH_COMPRESSED_* of makedumpfile's diskdump_mod.h).
const (
	FlagZlib   = 0x1
	FlagLZO    = 0x2
	FlagSnappy = 0x4
	// StatusIncomplete marks a dump whose writing failed (e.g. ENOSPC):
	// descriptors of pages that were never written read as offset 0.
	StatusIncomplete = 0x8
	// StatusExcludedVmemmap marks a dump taken with makedumpfile -e.
	StatusExcludedVmemmap = 0x10
	FlagZstd              = 0x20

	compressionFlags = FlagZlib | FlagLZO | FlagSnappy | FlagZstd
)

// Sizes of the on-disk structures (x86_64).
const (
	headerSize    = 464
	subHeaderSize = 104
	descSize      = 24
	utsLen        = 65
)

// Bounds on what a file may declare, so a corrupt header cannot make the
// reader allocate or loop without end.
const (
	minBlockSize = 512
	maxBlockSize = 1 << 20
	// maxMaxMapnr is 2^40 pfns: 4 EiB of 4 KiB pages, and a 128 GiB bitmap;
	// the reader only allocates what the file really contains.
	maxMaxMapnr = 1 << 40
	// maxNoteSize bounds the ELF notes and VMCOREINFO copied into the sub-header.
	maxNoteSize = 64 << 20
)

// Errors of the reader and writer, checked with errors.Is.
var (
	// ErrFormat is wrapped by every error about a malformed file; those
	// about a truncated one also wrap io.ErrUnexpectedEOF. Errors of the
	// underlying reader (e.g. EIO) are wrapped as they are, without it.
	ErrFormat = errors.New("malformed kdump-compressed file")
	// ErrExcluded is returned by ReadPage for a pfn that is not in the dump
	// (not in the 2nd bitmap, not RAM, or beyond max_mapnr).
	ErrExcluded = errors.New("page excluded from the dump")
	// ErrIncomplete is returned by ReadPage for a page whose descriptor was
	// never written: the dump is incomplete.
	ErrIncomplete = errors.New("page missing from an incomplete dump")
	// ErrFlattened is returned by Open for a flattened stream: reassemble it
	// first (Reassemble, or makedumpfile -R).
	ErrFlattened = errors.New("file is in the flattened format; reassemble it first")
)

func formatErr(format string, args ...any) error {
	return fmt.Errorf("kdumpfile: %w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// readErr is the error, without the package prefix, of a read of want
// bytes at off that gave got bytes and err. When the input ended (io.EOF,
// io.ErrUnexpectedEOF, or no error at all) the file is truncated: the error
// wraps ErrFormat and io.ErrUnexpectedEOF. Any other error (e.g. EIO) is a
// read error: wrapped, and not ErrFormat.
func readErr(what string, off int64, got, want uint64, err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s at %#x truncated: read %d of %d bytes: %w", ErrFormat, what, off, got, want, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("read %s at %#x: %w", what, off, err)
}

// Utsname is the crashed kernel's struct new_utsname as the header stores it:
// six NUL-padded 65-byte fields.
type Utsname struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

func (u *Utsname) fields() []*string {
	return []*string{&u.Sysname, &u.Nodename, &u.Release, &u.Version, &u.Machine, &u.Domainname}
}

// Header is struct disk_dump_header.
type Header struct {
	Signature string
	Version   int32
	Utsname   Utsname
	// Timestamp is the crash time: tv_sec and tv_usec. Writers store
	// tv_usec = 0: libkdumpfile ≤ 0.5 mis-detects a 64-bit dump as 32-bit
	// when tv_usec is a power of two in [4096, 262144].
	TimestampSec, TimestampUsec int64
	Status                      uint32
	BlockSize                   int32
	// SubHdrSize is the size of the sub-header and the notes, in blocks.
	SubHdrSize int32
	// BitmapBlocks is the size of both bitmaps together, in blocks.
	BitmapBlocks uint32
	// MaxMapnr is max_mapnr truncated to 32 bits (obsolete; see
	// SubHeader.MaxMapnr64).
	MaxMapnr uint32
	// TotalRAMBlocks, DeviceBlocks, WrittenBlocks and CurrentCPU are
	// leftovers of the old diskdump facility, written as 0.
	TotalRAMBlocks, DeviceBlocks, WrittenBlocks, CurrentCPU uint32
	NrCPUs                                                  int32
}

// SubHeader is struct kdump_sub_header (header version 6).
type SubHeader struct {
	PhysBase  uint64
	DumpLevel int32
	Split     int32
	// StartPFN and EndPFN are the obsolete 32-bit-era split range.
	StartPFN, EndPFN uint64
	// OffsetVMCoreInfo and SizeVMCoreInfo locate the VMCOREINFO note's text.
	OffsetVMCoreInfo int64
	SizeVMCoreInfo   uint64
	// OffsetNote and SizeNote locate the copy of the core's ELF notes.
	OffsetNote int64
	SizeNote   uint64
	// OffsetEraseInfo and SizeEraseInfo locate the eraseinfo text (0 if none).
	OffsetEraseInfo      int64
	SizeEraseInfo        uint64
	StartPFN64, EndPFN64 uint64
	MaxMapnr64           uint64
}

// PageDesc is page_desc_t: where a page's data is and how it is stored.
type PageDesc struct {
	// Offset is the file offset of the data; 0 means the descriptor was
	// never written (incomplete dump).
	Offset int64
	// Size is the length of the stored data; the page size for raw pages.
	Size uint32
	// Flags is 0 for a raw page or one of FlagZlib, FlagLZO, FlagSnappy, FlagZstd.
	Flags uint32
	// PageFlags is always 0.
	PageFlags uint64
}

// HeaderStatusOffset is the offset of the status field (StatusIncomplete,
// the codec bits) in the main header: what a writer rewrites last.
const HeaderStatusOffset = 424

func (h *Header) marshal() []byte {
	b := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(b[0:8], h.Signature)
	le.PutUint32(b[8:], uint32(h.Version))
	for i, f := range h.Utsname.fields() {
		copy(b[12+i*utsLen:12+(i+1)*utsLen-1], *f) // keep a NUL at the end
	}
	le.PutUint64(b[408:], uint64(h.TimestampSec))
	le.PutUint64(b[416:], uint64(h.TimestampUsec))
	le.PutUint32(b[HeaderStatusOffset:], h.Status)
	le.PutUint32(b[428:], uint32(h.BlockSize))
	le.PutUint32(b[432:], uint32(h.SubHdrSize))
	le.PutUint32(b[436:], h.BitmapBlocks)
	le.PutUint32(b[440:], h.MaxMapnr)
	le.PutUint32(b[444:], h.TotalRAMBlocks)
	le.PutUint32(b[448:], h.DeviceBlocks)
	le.PutUint32(b[452:], h.WrittenBlocks)
	le.PutUint32(b[456:], h.CurrentCPU)
	le.PutUint32(b[460:], uint32(h.NrCPUs))
	return b
}

func unmarshalHeader(b []byte) Header {
	le := binary.LittleEndian
	h := Header{
		Signature:      string(b[0:8]),
		Version:        int32(le.Uint32(b[8:])),
		TimestampSec:   int64(le.Uint64(b[408:])),
		TimestampUsec:  int64(le.Uint64(b[416:])),
		Status:         le.Uint32(b[HeaderStatusOffset:]),
		BlockSize:      int32(le.Uint32(b[428:])),
		SubHdrSize:     int32(le.Uint32(b[432:])),
		BitmapBlocks:   le.Uint32(b[436:]),
		MaxMapnr:       le.Uint32(b[440:]),
		TotalRAMBlocks: le.Uint32(b[444:]),
		DeviceBlocks:   le.Uint32(b[448:]),
		WrittenBlocks:  le.Uint32(b[452:]),
		CurrentCPU:     le.Uint32(b[456:]),
		NrCPUs:         int32(le.Uint32(b[460:])),
	}
	for i, f := range h.Utsname.fields() {
		*f = cstr.String(b[12+i*utsLen : 12+(i+1)*utsLen])
	}
	return h
}

func (s *SubHeader) marshal() []byte {
	b := make([]byte, subHeaderSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], s.PhysBase)
	le.PutUint32(b[8:], uint32(s.DumpLevel))
	le.PutUint32(b[12:], uint32(s.Split))
	le.PutUint64(b[16:], s.StartPFN)
	le.PutUint64(b[24:], s.EndPFN)
	le.PutUint64(b[32:], uint64(s.OffsetVMCoreInfo))
	le.PutUint64(b[40:], s.SizeVMCoreInfo)
	le.PutUint64(b[48:], uint64(s.OffsetNote))
	le.PutUint64(b[56:], s.SizeNote)
	le.PutUint64(b[64:], uint64(s.OffsetEraseInfo))
	le.PutUint64(b[72:], s.SizeEraseInfo)
	le.PutUint64(b[80:], s.StartPFN64)
	le.PutUint64(b[88:], s.EndPFN64)
	le.PutUint64(b[96:], s.MaxMapnr64)
	return b
}

func unmarshalSubHeader(b []byte) SubHeader {
	le := binary.LittleEndian
	return SubHeader{
		PhysBase:         le.Uint64(b[0:]),
		DumpLevel:        int32(le.Uint32(b[8:])),
		Split:            int32(le.Uint32(b[12:])),
		StartPFN:         le.Uint64(b[16:]),
		EndPFN:           le.Uint64(b[24:]),
		OffsetVMCoreInfo: int64(le.Uint64(b[32:])),
		SizeVMCoreInfo:   le.Uint64(b[40:]),
		OffsetNote:       int64(le.Uint64(b[48:])),
		SizeNote:         le.Uint64(b[56:]),
		OffsetEraseInfo:  int64(le.Uint64(b[64:])),
		SizeEraseInfo:    le.Uint64(b[72:]),
		StartPFN64:       le.Uint64(b[80:]),
		EndPFN64:         le.Uint64(b[88:]),
		MaxMapnr64:       le.Uint64(b[96:]),
	}
}

func (d PageDesc) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(d.Offset))
	le.PutUint32(b[8:], d.Size)
	le.PutUint32(b[12:], d.Flags)
	le.PutUint64(b[16:], d.PageFlags)
}

func getPageDesc(b []byte) PageDesc {
	le := binary.LittleEndian
	return PageDesc{Offset: int64(le.Uint64(b[0:])), Size: le.Uint32(b[8:]), Flags: le.Uint32(b[12:]), PageFlags: le.Uint64(b[16:])}
}

// Time is the header timestamp as a time.Time (UTC), or the zero time when
// tv_sec is 0.
func (h Header) Time() time.Time {
	if h.TimestampSec == 0 && h.TimestampUsec == 0 {
		return time.Time{}
	}
	return time.Unix(h.TimestampSec, h.TimestampUsec*1000).UTC()
}

func divUp(n, d uint64) uint64 { return (n + d - 1) / d }

// layout is where the parts of a file are, in bytes.
type layout struct {
	blockSize    uint64
	subHdrBlocks uint64
	bitmapBytes  uint64 // one bitmap, block-aligned
	bitmap1Off   uint64
	bitmap2Off   uint64
	descOff      uint64
}

// computeLayout places the parts of a file with a given block size, note
// size and max_mapnr, as makedumpfile does.
func computeLayout(blockSize, noteSize, maxMapnr uint64) layout {
	l := layout{blockSize: blockSize}
	l.subHdrBlocks = divUp(subHeaderSize+noteSize, blockSize)
	l.bitmapBytes = divUp(bitmap.ByteLen(maxMapnr), blockSize) * blockSize
	l.bitmap1Off = (1 + l.subHdrBlocks) * blockSize
	l.bitmap2Off = l.bitmap1Off + l.bitmapBytes
	l.descOff = l.bitmap2Off + l.bitmapBytes
	return l
}
