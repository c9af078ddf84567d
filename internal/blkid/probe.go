// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package blkid

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/ukdump/ukdump/internal/cstr"
)

// Probe identifies the filesystem whose superblock r starts with: ext2, ext3,
// ext4, xfs, vfat (FAT12/16/32) or btrfs. It returns its type, its UUID in
// lower-case canonical form (vfat: xxxx-xxxx) and its label. An unknown
// filesystem or a device too short to hold a superblock gives fstype "" and no
// error; only read errors other than EOF are returned.
func Probe(r io.ReaderAt) (fstype, uuid, label string, err error) {
	// 8 KiB covers the ext superblock (1024) and the xfs and vfat boot sectors (0).
	head, err := readAt(r, 0, 8192)
	if err != nil {
		return "", "", "", err
	}
	if sb := field(head, 1024, 1024); sb != nil && binary.LittleEndian.Uint16(sb[0x38:]) == 0xEF53 &&
		binary.LittleEndian.Uint32(sb[0x18:]) <= 6 { // s_log_block_size: blocks of 1-64 KiB
		compat := binary.LittleEndian.Uint32(sb[0x5c:])
		incompat := binary.LittleEndian.Uint32(sb[0x60:])
		fstype = "ext2"
		switch {
		case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
			fstype = "ext4"
		case compat&0x4 != 0: // has_journal
			fstype = "ext3"
		}
		return fstype, formatUUID(sb[0x68:0x78]), cstr.String(sb[0x78:0x88]), nil
	}
	if sb := field(head, 0, 120); sb != nil && string(sb[:4]) == "XFSB" {
		return "xfs", formatUUID(sb[32:48]), cstr.String(sb[108:120]), nil
	}
	if bs := field(head, 0, 512); bs != nil {
		for _, v := range []struct{ typ, serial, label int }{
			{0x52, 0x43, 0x47}, // FAT32 extended BPB
			{0x36, 0x27, 0x2b}, // FAT12/FAT16 extended BPB
		} {
			switch string(bs[v.typ : v.typ+8]) {
			case "FAT32   ", "FAT16   ", "FAT12   ":
				serial := binary.LittleEndian.Uint32(bs[v.serial:])
				label := strings.TrimRight(string(bs[v.label:v.label+11]), " \x00")
				if label == "NO NAME" {
					label = ""
				}
				return "vfat", fmt.Sprintf("%04x-%04x", serial>>16, serial&0xffff), label, nil
			}
		}
	}
	sb, err := readAt(r, 0x10000, 0x1000)
	if err != nil {
		return "", "", "", err
	}
	if sb := field(sb, 0, 0x12b+256); sb != nil && string(sb[0x40:0x48]) == "_BHRfS_M" {
		return "btrfs", formatUUID(sb[0x20:0x30]), cstr.String(sb[0x12b : 0x12b+256]), nil
	}
	return "", "", "", nil
}

// readAt reads up to n bytes at off; a short read is not an error.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("blkid: read %d bytes at offset %d: %w", n, off, err)
	}
	return b[:m], nil
}

// field returns b[off:off+n], or nil when b is too short.
func field(b []byte, off, n int) []byte {
	if off < 0 || n < 0 || off+n > len(b) {
		return nil
	}
	return b[off : off+n]
}

// formatUUID formats 16 bytes stored in big-endian (RFC 4122) order.
func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// formatGUID formats a 16-byte GPT GUID, whose first three fields are
// little-endian.
func formatGUID(b []byte) string {
	le := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	return formatUUID(append(le, b[8:16]...))
}

// partUUID returns the PARTUUID the kernel gives partition number partn of
// the disk r: the unique GUID of GPT entry partn-1 (512- or 4096-byte
// sectors), or the MBR disk signature and the partition number in hex
// ("%08x-%02x", as the kernel and libblkid print it).
func partUUID(r io.ReaderAt, partn int) (string, error) {
	if partn < 1 {
		return "", fmt.Errorf("blkid: bad partition number %d", partn)
	}
	for _, sector := range []int64{512, 4096} {
		hdr, err := readAt(r, sector, 512)
		if err != nil {
			return "", err
		}
		if len(hdr) < 92 || string(hdr[:8]) != "EFI PART" {
			continue
		}
		size := binary.LittleEndian.Uint32(hdr[12:])
		if size < 92 || size > uint32(len(hdr)) {
			return "", fmt.Errorf("blkid: GPT header at %d: bad header size %d", sector, size)
		}
		h := bytes.Clone(hdr[:size])
		clear(h[16:20])
		if crc := crc32.ChecksumIEEE(h); crc != binary.LittleEndian.Uint32(hdr[16:]) {
			return "", fmt.Errorf("blkid: GPT header at %d: CRC %08x, header says %08x", sector, crc, binary.LittleEndian.Uint32(hdr[16:]))
		}
		lba := binary.LittleEndian.Uint64(hdr[72:])
		n := binary.LittleEndian.Uint32(hdr[80:])
		esize := binary.LittleEndian.Uint32(hdr[84:])
		if uint32(partn) > n || esize < 128 || lba > 1<<40 {
			return "", fmt.Errorf("blkid: GPT at %d has no entry %d (%d entries of %d bytes at LBA %d)", sector, partn, n, esize, lba)
		}
		off := int64(lba)*sector + int64(partn-1)*int64(esize)
		e, err := readAt(r, off, 32)
		if err != nil {
			return "", err
		}
		if len(e) < 32 {
			return "", fmt.Errorf("blkid: GPT entry %d at offset %d is past the end of the disk", partn, off)
		}
		return formatGUID(e[16:32]), nil
	}
	mbr, err := readAt(r, 0, 512)
	if err != nil {
		return "", err
	}
	if len(mbr) < 512 || mbr[510] != 0x55 || mbr[511] != 0xAA {
		return "", errors.New("blkid: neither a GPT nor an MBR partition table")
	}
	return fmt.Sprintf("%08x-%02x", binary.LittleEndian.Uint32(mbr[0x1b8:]), partn), nil
}
