// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/cstr"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// testSegments has a hole, a segment starting mid-page and one ending
// mid-page.
var testSegments = [][2]uint64{{0x100000, 0x40000}, {0x200800, 0x20000}, {0x400000, 0x30800}}

// excludeSome clears every 5th pfn of a copy of present: a stand-in for a
// dump level that excludes pages.
func excludeSome(present *bitmap.Bitmap) *bitmap.Bitmap {
	d := present.Clone()
	for pfn := uint64(0); pfn < d.Len(); pfn += 5 {
		d.Clear(pfn)
	}
	return d
}

func TestRoundTrip(t *testing.T) {
	tc := newTestCore(t, 1, testSegments)
	for _, codec := range []Codec{CodecNone, CodecZlib, CodecLZO, CodecSnappy, CodecZstd} {
		for _, level := range []int{0, 1, 31} {
			t.Run(fmt.Sprintf("%s/d%d", codec, level), func(t *testing.T) {
				dumpable := tc.present
				if level == 31 {
					dumpable = excludeSome(tc.present)
				}
				var f memFile
				p := Params{Codec: codec, DumpLevel: level, BufferSize: 3 * testPageSize}
				if err := tc.writeDump(t, &f, p, dumpable); err != nil {
					t.Fatalf("writing the dump: %v", err)
				}
				kf, err := Open(&f)
				if err != nil {
					t.Fatalf("Open = %v", err)
				}
				defer kf.Close()
				if kf.Incomplete() {
					t.Errorf("Incomplete() = true for a complete dump")
				}
				if got := kf.Codec(); got != codec {
					t.Errorf("Codec() = %q, want %q", got, codec)
				}
				if diff := cmp.Diff(tc.present.Bytes(), kf.Present().Bytes()); diff != "" {
					t.Errorf("1st bitmap (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(dumpable.Bytes(), kf.Dumpable().Bytes()); diff != "" {
					t.Errorf("2nd bitmap (-want +got):\n%s", diff)
				}
				if !bytes.Equal(kf.Notes(), tc.notes) {
					t.Errorf("Notes() differ from the core's PT_NOTE")
				}
				if got, want := string(kf.VMCoreInfo()), tc.core.Info.Raw; got != want {
					t.Errorf("VMCoreInfo() = %q, want %q", got, want)
				}
				if got, want := kf.NumDumpable(), dumpable.Count(); got != want {
					t.Errorf("NumDumpable() = %d, want %d", got, want)
				}

				var zeroDesc *PageDesc
				counts := map[string]int{}
				buf := make([]byte, testPageSize)
				for pfn := uint64(0); pfn < tc.maxPFN+2; pfn++ {
					err := kf.ReadPage(pfn, buf)
					if !dumpable.Get(pfn) {
						if !errors.Is(err, ErrExcluded) {
							t.Fatalf("ReadPage(%#x) = %v, want ErrExcluded", pfn, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("ReadPage(%#x) = %v", pfn, err)
					}
					want := tc.page(t, pfn)
					if !bytes.Equal(buf, want) {
						t.Fatalf("ReadPage(%#x) differs from the core", pfn)
					}
					d, err := kf.PageDesc(pfn)
					if err != nil {
						t.Fatalf("PageDesc(%#x) = %v", pfn, err)
					}
					switch {
					case isZero(want) && level&1 != 0:
						counts["zero"]++
						if zeroDesc == nil {
							zeroDesc = &d
						}
						if d != *zeroDesc || d.Size != testPageSize || d.Flags != 0 {
							t.Errorf("zero pfn %#x: descriptor %+v, want the shared %+v", pfn, d, *zeroDesc)
						}
					case d.Flags == 0:
						counts["raw"]++
						if d.Size != testPageSize {
							t.Errorf("raw pfn %#x: size %d", pfn, d.Size)
						}
					default:
						counts["compressed"]++
						if d.Flags != codec.Flag() || d.Size >= testPageSize {
							t.Errorf("pfn %#x: descriptor %+v, want flags %#x and size < %d", pfn, d, codec.Flag(), testPageSize)
						}
					}
				}
				if level&1 != 0 && counts["zero"] < 2 {
					t.Errorf("only %d zero pages: the test core has too few", counts["zero"])
				}
				if codec != CodecNone && (counts["raw"] == 0 || counts["compressed"] == 0) {
					t.Errorf("pages: %v; want both raw (random) and compressed ones", counts)
				}
				if codec == CodecNone && counts["compressed"] != 0 {
					t.Errorf("pages: %v; want no compressed ones", counts)
				}
			})
		}
	}
}

func TestHeaderFields(t *testing.T) {
	tc := newTestCore(t, 2, testSegments)
	var f memFile
	p := CoreParams(tc.core)
	p.Codec, p.DumpLevel, p.Utsname.Nodename = CodecZstd, 1, "crashed"
	if err := tc.writeDump(t, &f, p, tc.present); err != nil {
		t.Fatalf("writing the dump: %v", err)
	}
	b := f.b
	le := binary.LittleEndian
	// Layout: the notes (2×356 + VMCOREINFO) fit in block 1; max_mapnr
	// 0x431 needs 135 bytes: one block per bitmap.
	noteSize := uint64(len(tc.notes))
	infoAt := bytes.Index(b, []byte("OSRELEASE="))
	tests := []struct {
		name string
		off  int
		got  any
		want any
	}{
		{"signature", 0, string(b[0:8]), "KDUMP   "},
		{"header_version", 8, le.Uint32(b[8:]), uint32(6)},
		{"utsname.sysname", 12, cstr.String(b[12:77]), "Linux"},
		{"utsname.nodename", 77, cstr.String(b[77:142]), "crashed"},
		{"utsname.release", 142, cstr.String(b[142:207]), "6.1.0-test-amd64"},
		{"utsname.machine", 272, cstr.String(b[272:337]), "x86_64"},
		{"timestamp.tv_sec", 408, le.Uint64(b[408:]), uint64(1763894096)},
		{"timestamp.tv_usec", 416, le.Uint64(b[416:]), uint64(0)},
		{"status", 424, le.Uint32(b[424:]), uint32(FlagZstd)},
		{"block_size", 428, le.Uint32(b[428:]), uint32(4096)},
		{"sub_hdr_size", 432, le.Uint32(b[432:]), uint32(1)},
		{"bitmap_blocks", 436, le.Uint32(b[436:]), uint32(2)},
		{"max_mapnr", 440, le.Uint32(b[440:]), uint32(0x431)},
		{"nr_cpus", 460, le.Uint32(b[460:]), uint32(2)},
		{"header padding is zero", 464, isZero(b[464:4096]), true},
		{"phys_base", 4096, le.Uint64(b[4096:]), uint64(350224384)},
		{"dump_level", 4104, le.Uint32(b[4104:]), uint32(1)},
		{"split", 4108, le.Uint32(b[4108:]), uint32(0)},
		{"offset_vmcoreinfo", 4128, le.Uint64(b[4128:]), uint64(infoAt)},
		{"size_vmcoreinfo", 4136, le.Uint64(b[4136:]), uint64(len(tc.core.Info.Raw))},
		{"offset_note", 4144, le.Uint64(b[4144:]), uint64(4200)},
		{"size_note", 4152, le.Uint64(b[4152:]), noteSize},
		{"offset_eraseinfo", 4160, le.Uint64(b[4160:]), uint64(0)},
		{"max_mapnr_64", 4192, le.Uint64(b[4192:]), uint64(0x431)},
		{"notes verbatim", 4200, bytes.Equal(b[4200:4200+noteSize], tc.notes), true},
		{"1st bitmap", 2 * 4096, bytes.Equal(b[2*4096:2*4096+135], tc.present.Bytes()), true},
		{"2nd bitmap", 3 * 4096, bytes.Equal(b[3*4096:3*4096+135], tc.present.Bytes()), true},
		// The first descriptor (pfn 0x100) is at block 4; the shared zero
		// page is the first data, right after num_dumpable descriptors.
		{"zero page offset", 4 * 4096, le.Uint64(b[4*4096:]) >= 4*4096+24*tc.present.Count(), true},
		{"zero page is first data", 4 * 4096, isZero(b[4*4096+24*tc.present.Count() : 5*4096+24*tc.present.Count()]), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("at offset %d (-want +got):\n%s", tt.off, diff)
			}
		})
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if got, want := kf.Header().Time(), time.Unix(1763894096, 0).UTC(); !got.Equal(want) {
		t.Errorf("Header().Time() = %v, want %v", got, want)
	}
	if got := kf.SubHeader().PhysBase; got != 350224384 {
		t.Errorf("SubHeader().PhysBase = %d, want 350224384", got)
	}
}

// TestVMCoreInfoOnly checks a core without a VMCOREINFO note: the writer
// appends one holding Params.VMCoreInfo and points the sub-header at it.
func TestVMCoreInfoOnly(t *testing.T) {
	present := bitmap.New(16)
	present.SetRange(2, 10)
	info := []byte("OSRELEASE=6.1.0-x\nPAGESIZE=4096\n")
	var f memFile
	w, err := NewWriter(&f, Params{VMCoreInfo: info, Utsname: Utsname{Release: vmcore.ParseInfo(info).OSRelease()}}, present, present)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	page := bytes.Repeat([]byte{7}, testPageSize)
	for pfn := uint64(2); pfn < 10; pfn++ {
		if err := w.WritePage(pfn, page, 0, false); err != nil {
			t.Fatalf("WritePage(%d) = %v", pfn, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if got := string(kf.VMCoreInfo()); got != string(info) {
		t.Errorf("VMCoreInfo() = %q, want %q", got, info)
	}
	if got := kf.Header().Utsname.Release; got != "6.1.0-x" {
		t.Errorf("release = %q, want 6.1.0-x", got)
	}
	if notes, err := vmcore.ParseNotes(kf.Notes()); len(notes) != 1 || err != nil {
		t.Errorf("ParseNotes(Notes()) = %d notes, %v; want 1", len(notes), err)
	}
}

func TestWriterErrors(t *testing.T) {
	present := bitmap.New(64)
	present.SetRange(8, 40)
	page := make([]byte, testPageSize)
	for i := range page {
		page[i] = byte(i * 7)
	}
	tests := []struct {
		name  string
		write func(w *Writer) error
		want  string
	}{
		{"out of order", func(w *Writer) error { return w.WritePage(9, page, 0, false) }, "the next dumpable pfn is 0x8"},
		{"not dumpable", func(w *Writer) error { return w.WritePage(3, page, 0, false) }, "page out of order"},
		{"short raw page", func(w *Writer) error { return w.WritePage(8, page[:100], 0, false) }, "raw page of 100 bytes"},
		{"wrong codec", func(w *Writer) error { return w.WritePage(8, page[:100], FlagZstd, false) }, "the dump's codec is zlib"},
		{"compressed too big", func(w *Writer) error { return w.WritePage(8, page, FlagZlib, false) }, "4096 bytes of compressed data"},
		{"close early", func(w *Writer) error { return w.Close() }, "closing after 0 of 32 dumpable pages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f memFile
			w, err := NewWriter(&f, Params{Codec: CodecZlib, PageSize: testPageSize}, present, present)
			if err != nil {
				t.Fatalf("NewWriter = %v", err)
			}
			err = tt.write(w)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}

	t.Run("close early marks incomplete", func(t *testing.T) {
		var f memFile
		w, err := NewWriter(&f, Params{PageSize: testPageSize}, present, present)
		if err != nil {
			t.Fatalf("NewWriter = %v", err)
		}
		if err := w.WritePage(8, page, 0, false); err != nil {
			t.Fatalf("WritePage = %v", err)
		}
		if err := w.Close(); err == nil {
			t.Fatalf("Close = nil, want an error")
		}
		kf, err := Open(&f)
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		if !kf.Incomplete() {
			t.Errorf("Incomplete() = false")
		}
		buf := make([]byte, testPageSize)
		if err := kf.ReadPage(8, buf); err != nil || !bytes.Equal(buf, page) {
			t.Errorf("ReadPage(8) = %v (equal %v), want the page", err, bytes.Equal(buf, page))
		}
		if err := kf.ReadPage(9, buf); !errors.Is(err, ErrIncomplete) {
			t.Errorf("ReadPage(9) = %v, want ErrIncomplete", err)
		}
	})

	t.Run("bad params", func(t *testing.T) {
		other := bitmap.New(64)
		other.Set(2)
		small := bitmap.New(32)
		for _, tt := range []struct {
			name              string
			p                 Params
			present, dumpable *bitmap.Bitmap
			want              string
		}{
			{"not a subset", Params{}, present, other, "pfn 0x2 is dumpable but not present"},
			{"sizes differ", Params{}, present, small, "bitmaps cover"},
			{"page size", Params{PageSize: 3000}, present, present, "page size 3000"},
			{"codec", Params{Codec: "lz4"}, present, present, `unknown codec "lz4"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := NewWriter(&memFile{}, tt.p, tt.present, tt.dumpable)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("NewWriter = %v, want an error containing %q", err, tt.want)
				}
			})
		}
	})
}

// TestENOSPC fills the disk at different points: the writer fails, Abort
// marks the header incomplete, and every page whose descriptor made it to
// disk reads back correctly; the rest read as ErrIncomplete, after them.
func TestENOSPC(t *testing.T) {
	tc := newTestCore(t, 3, [][2]uint64{{0x100000, 0x300000}})
	var whole memFile
	p := Params{Codec: CodecZlib, DumpLevel: 1, BufferSize: 16 << 10}
	if err := tc.writeDump(t, &whole, p, tc.present); err != nil {
		t.Fatalf("writing the complete dump: %v", err)
	}
	blocks := len(whole.b) / 4096
	for _, quota := range []int{6, 8, 20, blocks / 3, blocks / 2, blocks - 2, blocks - 1} {
		t.Run(fmt.Sprintf("quota%d", quota), func(t *testing.T) {
			d := newFullDisk(quota)
			err := tc.writeDump(t, d, p, tc.present)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("writing on a full disk = %v, want ENOSPC", err)
			}
			kf, err := Open(&d.memFile)
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if !kf.Incomplete() {
				t.Fatalf("Incomplete() = false")
			}
			buf := make([]byte, testPageSize)
			good, missing := 0, 0
			for pfn, ok := tc.present.NextSet(0); ok; pfn, ok = tc.present.NextSet(pfn + 1) {
				err := kf.ReadPage(pfn, buf)
				switch {
				case errors.Is(err, ErrIncomplete):
					missing++
				case err != nil:
					t.Fatalf("ReadPage(%#x) = %v", pfn, err)
				case missing > 0:
					t.Fatalf("ReadPage(%#x) succeeded after %d missing pages", pfn, missing)
				case !bytes.Equal(buf, tc.page(t, pfn)):
					t.Fatalf("ReadPage(%#x) differs from the core", pfn)
				default:
					good++
				}
			}
			t.Logf("quota %d of %d blocks: %d pages good, %d missing", quota, blocks, good, missing)
			if missing == 0 {
				t.Errorf("no page missing")
			}
			if quota >= blocks/2 && good == 0 {
				t.Errorf("no page saved with half the space")
			}
		})
	}
}

// TestAbortByCaller aborts for a reason other than the sink (e.g. the source
// failed): everything written so far is flushed and readable.
func TestAbortByCaller(t *testing.T) {
	tc := newTestCore(t, 4, [][2]uint64{{0, 0x40000}})
	var f memFile
	w, err := NewWriter(&f, Params{Notes: tc.notes, Codec: CodecSnappy}, tc.present, tc.present)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	c, _ := NewCompressor(CodecSnappy, testPageSize)
	for pfn := range uint64(10) {
		out, flags := c.Compress(nil, tc.page(t, pfn))
		if err := w.WritePage(pfn, out, flags, false); err != nil {
			t.Fatalf("WritePage(%d) = %v", pfn, err)
		}
	}
	if err := w.Abort(errors.New("source read error")); err != nil {
		t.Fatalf("Abort = %v", err)
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	buf := make([]byte, testPageSize)
	for pfn := range uint64(12) {
		err := kf.ReadPage(pfn, buf)
		if pfn < 10 && (err != nil || !bytes.Equal(buf, tc.page(t, pfn))) {
			t.Errorf("ReadPage(%d) = %v, want the page", pfn, err)
		}
		if pfn >= 10 && !errors.Is(err, ErrIncomplete) {
			t.Errorf("ReadPage(%d) = %v, want ErrIncomplete", pfn, err)
		}
	}
}

func TestVmcoretestCore(t *testing.T) {
	im, err := vmcoretest.Core{Seed: 7}.Build()
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	tc := coreFromImage(t, im)
	var f memFile
	p := CoreParams(tc.core)
	p.Codec, p.DumpLevel = CodecZstd, 1
	if err := tc.writeDump(t, &f, p, tc.present); err != nil {
		t.Fatalf("writing the dump: %v", err)
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if got, want := kf.Header().NrCPUs, int32(2); got != want {
		t.Errorf("nr_cpus = %d, want %d", got, want)
	}
	buf := make([]byte, testPageSize)
	n := 0
	for pfn, ok := tc.present.NextSet(0); ok; pfn, ok = tc.present.NextSet(pfn + 1) {
		if err := kf.ReadPage(pfn, buf); err != nil || !bytes.Equal(buf, tc.page(t, pfn)) {
			t.Fatalf("ReadPage(%#x) = %v or differs", pfn, err)
		}
		n++
	}
	if n != 1024 {
		t.Errorf("%d pages, want 1024 (4 MiB)", n)
	}
}

// tornDisk has room for only limit bytes of descriptors at descOff: a
// descriptor write reaching past it writes what fits and fails, tearing a
// descriptor in two. Page data always fits.
type tornDisk struct {
	memFile
	descOff, limit, dataOff int64
}

func (d *tornDisk) WriteAt(p []byte, off int64) (int, error) {
	end := d.descOff + d.limit
	if off < d.descOff || off >= d.dataOff || off+int64(len(p)) <= end {
		return d.memFile.WriteAt(p, off)
	}
	n := int(max(end-off, 0))
	d.memFile.WriteAt(p[:n], off)
	return n, syscall.ENOSPC
}

// TestTornDescriptor checks that a descriptor write cut short inside a
// descriptor leaves no half-written descriptor: the torn one reads as
// missing, not as a corrupt page.
func TestTornDescriptor(t *testing.T) {
	const n = 16
	present := bitmap.New(n)
	present.SetRange(0, n)
	// Block 0 header, block 1 sub-header, blocks 2 and 3 the bitmaps.
	const descOff = 4 * testPageSize
	d := &tornDisk{descOff: descOff, limit: descSize + 6, dataOff: descOff + n*descSize}
	w, err := NewWriter(d, Params{PageSize: testPageSize, BufferSize: 2 * testPageSize}, present, present)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	page := func(pfn uint64) []byte { return bytes.Repeat([]byte{byte(pfn + 1)}, testPageSize) }
	var werr error
	for pfn := range uint64(n) {
		if werr = w.WritePage(pfn, page(pfn), 0, false); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("WritePage = %v, want ENOSPC", werr)
	}
	if err := w.Abort(werr); err != nil {
		t.Fatalf("Abort = %v", err)
	}
	kf, err := Open(&d.memFile)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	buf := make([]byte, testPageSize)
	if err := kf.ReadPage(0, buf); err != nil || !bytes.Equal(buf, page(0)) {
		t.Errorf("ReadPage(0) = %v, want the page", err)
	}
	for pfn := uint64(1); pfn < n; pfn++ {
		if err := kf.ReadPage(pfn, buf); !errors.Is(err, ErrIncomplete) {
			t.Errorf("ReadPage(%d) = %v, want ErrIncomplete", pfn, err)
		}
	}
}
