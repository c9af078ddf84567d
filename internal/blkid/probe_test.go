// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package blkid

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// uuidBytes parses a canonical UUID into its 16 bytes in string order.
func uuidBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("uuidBytes(%q): %v", s, err)
	}
	return b
}

// guidBytes is uuidBytes in the mixed-endian on-disk order of GPT GUIDs.
func guidBytes(t testing.TB, s string) []byte {
	b := uuidBytes(t, s)
	return append([]byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}, b[8:]...)
}

func xfsImage(t testing.TB, uuid, label string) []byte {
	b := make([]byte, 4096)
	copy(b, "XFSB")
	copy(b[32:], uuidBytes(t, uuid))
	copy(b[108:120], label)
	return b
}

func btrfsImage(t testing.TB, uuid, label string) []byte {
	b := make([]byte, 0x11000)
	copy(b[0x10040:], "_BHRfS_M")
	copy(b[0x10020:], uuidBytes(t, uuid))
	copy(b[0x1012b:], label)
	return b
}

// extImage is a bare ext superblock with the given feature words.
func extImage(t testing.TB, uuid, label string, compat, incompat uint32) []byte {
	b := make([]byte, 4096)
	sb := b[1024:]
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x5c:], compat)
	binary.LittleEndian.PutUint32(sb[0x60:], incompat)
	copy(sb[0x68:], uuidBytes(t, uuid))
	copy(sb[0x78:0x88], label)
	return b
}

// fatImage is a FAT boot sector; fat32 selects the FAT32 extended BPB.
func fatImage(fat32 bool, serial uint32, label string) []byte {
	b := make([]byte, 1024)
	typ, ser, lab, name := 0x36, 0x27, 0x2b, "FAT16   "
	if fat32 {
		typ, ser, lab, name = 0x52, 0x43, 0x47, "FAT32   "
	}
	copy(b[typ:], name)
	binary.LittleEndian.PutUint32(b[ser:], serial)
	copy(b[lab:lab+11], label+strings.Repeat(" ", 11-len(label)))
	b[510], b[511] = 0x55, 0xAA
	return b
}

// mkfsExt4 makes an 8 MiB ext4 image with the real mkfs.ext4.
func mkfsExt4(t *testing.T, uuid, label string) []byte {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		mkfs = "/usr/sbin/mkfs.ext4"
	}
	p := filepath.Join(t.TempDir(), "ext4.img")
	if out, err := exec.Command(mkfs, "-q", "-F", "-L", label, "-U", uuid, p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("%s -L %s -U %s %s 8M: %v\n%s", mkfs, label, uuid, p, err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("input/output error") }

func TestProbe(t *testing.T) {
	const u = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	type result struct{ FSType, UUID, Label string }
	for _, tt := range []struct {
		name string
		img  []byte
		want result
	}{
		{"mkfs.ext4", mkfsExt4(t, u, "crashdump"), result{"ext4", u, "crashdump"}},
		{"ext4 extents", extImage(t, u, "a", 0x4, 0x40), result{"ext4", u, "a"}},
		{"ext4 flex_bg", extImage(t, u, "a", 0, 0x200), result{"ext4", u, "a"}},
		{"ext3", extImage(t, u, "full-16-byte-lab", 0x4, 0x2), result{"ext3", u, "full-16-byte-lab"}},
		{"ext2", extImage(t, u, "", 0, 0x2), result{"ext2", u, ""}},
		{"xfs", xfsImage(t, u, "dumps"), result{"xfs", u, "dumps"}},
		{"fat32", fatImage(true, 0x1234ABCD, "CRASH"), result{"vfat", "1234-abcd", "CRASH"}},
		{"fat16", fatImage(false, 0xDEADBEEF, "DUMP DISK"), result{"vfat", "dead-beef", "DUMP DISK"}},
		{"fat no name", fatImage(true, 1, "NO NAME"), result{"vfat", "0000-0001", ""}},
		{"btrfs", btrfsImage(t, u, "pool"), result{"btrfs", u, "pool"}},
		{"zeros", make([]byte, 1<<17), result{}},
		{"short", []byte("XFS"), result{}},
		{"empty", nil, result{}},
		{"btrfs truncated", btrfsImage(t, u, "pool")[:0x10050], result{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			var err error
			got.FSType, got.UUID, got.Label, err = Probe(bytes.NewReader(tt.img))
			if err != nil {
				t.Fatalf("Probe = %v, want nil error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe mismatch (-want, +got):\n%s", diff)
			}
		})
	}
	if _, _, _, err := Probe(errReader{}); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("Probe(failing reader) = %v, want the read error", err)
	}
}

// gptDisk builds a disk with a protective MBR and a primary GPT whose
// partition i has unique GUID guids[i].
func gptDisk(t testing.TB, sector int, guids ...string) []byte {
	b := make([]byte, 34*sector)
	b[510], b[511] = 0x55, 0xAA
	entries := b[2*sector : 2*sector+128*128]
	for i, g := range guids {
		e := entries[i*128:]
		copy(e, guidBytes(t, "0fc63daf-8483-4772-8e79-3d69d8477de4")) // Linux filesystem
		copy(e[16:], guidBytes(t, g))
		binary.LittleEndian.PutUint64(e[32:], uint64(2048+i))
		binary.LittleEndian.PutUint64(e[40:], uint64(2048+i))
	}
	h := b[sector : sector+92]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x10000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[24:], 1)
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	return b
}

func mbrDisk(sig uint32) []byte {
	b := make([]byte, 512)
	binary.LittleEndian.PutUint32(b[0x1b8:], sig)
	b[510], b[511] = 0x55, 0xAA
	return b
}

func TestPartUUID(t *testing.T) {
	const g1, g2 = "6a8f3c1e-5b2d-4e7f-9a0b-1c2d3e4f5a6b", "A0B1C2D3-E4F5-4607-8819-2A3B4C5D6E7F"
	corrupt := gptDisk(t, 512, g1)
	corrupt[512+40] ^= 1
	for _, tt := range []struct {
		name    string
		disk    []byte
		partn   int
		want    string
		wantErr string
	}{
		{"gpt 512 first", gptDisk(t, 512, g1, g2), 1, g1, ""},
		{"gpt 512 second", gptDisk(t, 512, g1, g2), 2, strings.ToLower(g2), ""},
		{"gpt 4096", gptDisk(t, 4096, g1, g2), 2, strings.ToLower(g2), ""},
		{"gpt too few entries", gptDisk(t, 512, g1), 129, "", "no entry 129"},
		{"gpt bad crc", corrupt, 1, "", "CRC"},
		{"mbr", mbrDisk(0x0002dd75), 1, "0002dd75-01", ""},
		{"mbr logical hex", mbrDisk(0xcafe0001), 10, "cafe0001-0a", ""},
		{"no table", make([]byte, 4096), 1, "", "neither a GPT nor an MBR"},
		{"bad partn", mbrDisk(1), 0, "", "bad partition number"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := partUUID(bytes.NewReader(tt.disk), tt.partn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("partUUID(%d) = %q, %v; want error containing %q", tt.partn, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("partUUID(%d) = %q, %v; want %q", tt.partn, got, err, tt.want)
			}
		})
	}
}

func FuzzProbe(f *testing.F) {
	const u = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	for _, b := range [][]byte{
		extImage(f, u, "x", 0x4, 0x40), xfsImage(f, u, "x"), fatImage(true, 1, "x"), fatImage(false, 1, "x"),
		btrfsImage(f, u, "x")[:0x10300], gptDisk(f, 512, u), mbrDisk(1), nil,
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, _, err := Probe(bytes.NewReader(b)); err != nil {
			t.Errorf("Probe = %v on a bytes.Reader, want no error", err)
		}
		_, _ = partUUID(bytes.NewReader(b), 1) // errors are fine, panics are not
		_, _ = partUUID(bytes.NewReader(b), 128)
	})
}
