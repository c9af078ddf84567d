// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The on-disk format, from lvm2's format-text documentation and headers
// (read as a specification). All numbers are little-endian.
//
// The label is in one of the first four 512-byte sectors:
//
//	0  "LABELONE"
//	8  u64 the sector it is in
//	16 u32 CRC of bytes 20..512
//	20 u32 offset of the PV header in this sector (32)
//	24 "LVM2 001"
//
// then the PV header: 32 bytes of PV UUID, u64 device size in bytes, and two
// lists of (u64 offset, u64 size) in bytes, each ended by (0, 0): the data
// areas, then the metadata areas.
//
// A metadata area starts with a 512-byte header:
//
//	0  u32 CRC of bytes 4..512
//	4  " LVM2 x[5A%r0N*>"
//	20 u32 version (1)
//	24 u64 start of the area on the device (bytes)
//	32 u64 size of the area (bytes)
//	40 raw locations: (u64 offset from the area's start, u64 size,
//	   u32 CRC, u32 flags), ended by an offset of 0; the first is the
//	   current metadata.
//
// The rest of the area is a ring buffer of metadata texts: a text that runs
// past the end of the area goes on right after the header.
const (
	sectorSize    = 512
	labelSectors  = 4
	mdaHeaderSize = 512
	crcInit       = 0xf597a6cf
	mdaMagic      = " LVM2 x[5A%r0N*>"
	rawLocnIgnore = 1       // RAW_LOCN_IGNORED: this area is not used
	maxText       = 8 << 20 // bytes: far more than any VG's metadata needs
)

// ErrNoLabel is returned by readLabel for a device that is not an LVM2 PV.
var ErrNoLabel = errors.New("no LVM2 label")

// crc is LVM's checksum: CRC-32 (IEEE, reflected) from crcInit, with no
// final inversion.
func crc(b []byte) uint32 { return ^crc32.Update(^uint32(crcInit), crc32.IEEETable, b) }

// area is a data or metadata area: offset and size in bytes.
type area struct{ off, size uint64 }

// label is what a PV's label says.
type label struct {
	sector int
	pvid   string // 32 characters, no dashes
	size   uint64 // device size in bytes
	data   []area
	mdas   []area
}

// readLabel finds and checks the LVM2 label of r.
func readLabel(r io.ReaderAt) (*label, error) {
	buf := make([]byte, labelSectors*sectorSize)
	n, err := r.ReadAt(buf, 0)
	if n < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the label: %w", err)
	}
	for s := 0; s*sectorSize+sectorSize <= n; s++ {
		b := buf[s*sectorSize : (s+1)*sectorSize]
		if string(b[:8]) != "LABELONE" {
			continue
		}
		if got := binary.LittleEndian.Uint64(b[8:]); got != uint64(s) {
			return nil, fmt.Errorf("label in sector %d says sector %d", s, got)
		}
		if want, got := binary.LittleEndian.Uint32(b[16:]), crc(b[20:]); want != got {
			return nil, fmt.Errorf("label checksum mismatch in sector %d (%#x, want %#x)", s, got, want)
		}
		if string(b[24:32]) != "LVM2 001" {
			return nil, fmt.Errorf("label in sector %d: type %q, not LVM2 001", s, b[24:32])
		}
		off := binary.LittleEndian.Uint32(b[20:])
		if off < 32 || off > sectorSize-40-2*16 {
			return nil, fmt.Errorf("label in sector %d: PV header at bad offset %d", s, off)
		}
		h := b[off:]
		l := &label{sector: s, pvid: string(h[:32]), size: binary.LittleEndian.Uint64(h[32:])}
		h = h[40:]
		for _, list := range []*[]area{&l.data, &l.mdas} {
			for {
				if len(h) < 16 {
					return nil, fmt.Errorf("label in sector %d: area lists not ended", s)
				}
				a := area{binary.LittleEndian.Uint64(h), binary.LittleEndian.Uint64(h[8:])}
				h = h[16:]
				if a.off == 0 {
					break
				}
				*list = append(*list, a)
			}
		}
		return l, nil
	}
	return nil, ErrNoLabel
}

// errNoMetadata is readMetadata's answer for an area that is in use by no
// VG (a PV that is no VG's, or an area set to be ignored).
var errNoMetadata = errors.New("no metadata in this area")

// readMetadata reads the current metadata text of the metadata area a and
// returns it with its absolute offset, after checking the header and the
// text's checksum.
func readMetadata(r io.ReaderAt, a area) (text []byte, at uint64, err error) {
	h := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(h, int64(a.off)); err != nil {
		return nil, 0, fmt.Errorf("reading the metadata header at %#x: %w", a.off, err)
	}
	if string(h[4:20]) != mdaMagic {
		return nil, 0, fmt.Errorf("no metadata header at %#x (bad magic)", a.off)
	}
	if want, got := binary.LittleEndian.Uint32(h), crc(h[4:]); want != got {
		return nil, 0, fmt.Errorf("metadata header checksum mismatch at %#x", a.off)
	}
	if v := binary.LittleEndian.Uint32(h[20:]); v != 1 {
		return nil, 0, fmt.Errorf("metadata header at %#x: version %d, want 1", a.off, v)
	}
	start, size := binary.LittleEndian.Uint64(h[24:]), binary.LittleEndian.Uint64(h[32:])
	if start != a.off || size != a.size {
		return nil, 0, fmt.Errorf("metadata header at %#x describes an area at %#x of %#x bytes, the label one of %#x", a.off, start, size, a.size)
	}
	off, n := binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:])
	sum, flags := binary.LittleEndian.Uint32(h[56:]), binary.LittleEndian.Uint32(h[60:])
	if off == 0 || flags&rawLocnIgnore != 0 {
		return nil, 0, errNoMetadata
	}
	at = start + off
	if off < mdaHeaderSize || off >= size || n > size-mdaHeaderSize || n > maxText || n == 0 {
		return nil, 0, fmt.Errorf("metadata at %#x: %d bytes do not fit the area of %#x bytes", at, n, size)
	}
	text = make([]byte, n)
	first := min(n, size-off) // the rest wraps to just after the header
	if _, err := r.ReadAt(text[:first], int64(at)); err != nil {
		return nil, 0, fmt.Errorf("reading the metadata at %#x: %w", at, err)
	}
	if first < n {
		if _, err := r.ReadAt(text[first:], int64(start+mdaHeaderSize)); err != nil {
			return nil, 0, fmt.Errorf("reading the metadata at %#x: %w", start+mdaHeaderSize, err)
		}
	}
	if crc(text) != sum {
		return nil, 0, fmt.Errorf("metadata checksum mismatch at %#x", at)
	}
	return bytes.TrimRight(text, "\x00"), at, nil
}
