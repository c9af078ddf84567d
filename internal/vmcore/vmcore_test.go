// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

func readAll(t *testing.T, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n != len(b) {
		t.Fatalf("ReadAt(%d bytes) = %d, %v", size, n, err)
	}
	return b
}

func TestOpenSynthetic(t *testing.T) {
	im, err := vmcoretest.Core{CPUs: 3}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if got := c.CPUs(); got != 3 {
		t.Errorf("CPUs() = %d, want 3", got)
	}
	if got := len(c.Loads); got != 2 {
		t.Fatalf("len(Loads) = %d, want 2", got)
	}
	if c.Phdrs[0].Type != 4 {
		t.Errorf("first program header type %d, want PT_NOTE", c.Phdrs[0].Type)
	}
	for _, l := range c.Loads {
		if l.Offset%4096 != l.Paddr%4096 {
			t.Errorf("PT_LOAD paddr %#x at offset %#x: not congruent mod page size", l.Paddr, l.Offset)
		}
	}
	if got := c.MemoryBytes(); got != 4<<20 {
		t.Errorf("MemoryBytes() = %d, want %d", got, 4<<20)
	}
	if c.Info == nil {
		t.Fatal("Info = nil, want VMCOREINFO")
	}
	if got := c.Info.OSRelease(); got != "6.1.0-test-amd64" {
		t.Errorf("OSRelease() = %q", got)
	}
	if got := c.Info.PageSize(); got != 4096 {
		t.Errorf("PageSize() = %d", got)
	}
	if got, ok := c.Info.CrashTime(); !ok || !got.Equal(time.Unix(1763894096, 0)) {
		t.Errorf("CrashTime() = %v, %v", got, ok)
	}
	if got, ok := c.Info.Symbol("_stext"); !ok || got != 0xffffffff8bc00000 {
		t.Errorf("Symbol(_stext) = %#x, %v", got, ok)
	}
	if got, ok := c.Info.KernelOffset(); !ok || got != 0xa000000 {
		t.Errorf("KernelOffset() = %#x, %v", got, ok)
	}
	if got, ok := c.Info.Number("SECTION_SIZE_BITS"); !ok || got != 27 {
		t.Errorf("Number(SECTION_SIZE_BITS) = %d, %v", got, ok)
	}
	if got, ok := c.Info.Offset("page.flags"); !ok || got != 0 {
		t.Errorf("Offset(page.flags) = %d, %v", got, ok)
	}
	if got, ok := c.Info.SizeOf("page"); !ok || got != 64 {
		t.Errorf("SizeOf(page) = %d, %v", got, ok)
	}
	if got, ok := c.Info.Length("mem_section"); !ok || got != 4096 {
		t.Errorf("Length(mem_section) = %d, %v", got, ok)
	}
	if _, ok := c.Info.Symbol("nonexistent"); ok {
		t.Errorf("Symbol(nonexistent) ok = true")
	}
}

func TestOpenOldmem(t *testing.T) {
	mem, hdr := vmcoretest.Oldmem()
	wantMem := map[uint64][]byte{
		0x100000: mem[0x100000:0x180000],
		0x300800: mem[0x300800:0x500800],
	}
	path := filepath.Join(t.TempDir(), "oldmem")
	if err := os.WriteFile(path, mem, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmdline := "ro console=ttyS0 elfcorehdr=128K irqpoll"
	addr, ok, err := vmcore.ParseElfcorehdr(cmdline)
	if err != nil || !ok || addr != hdr {
		t.Fatalf("ParseElfcorehdr(%q) = %#x, %v, %v; want %#x", cmdline, addr, ok, err, hdr)
	}
	im, c, err := vmcore.OpenOldmem(f, addr)
	if err != nil {
		t.Fatalf("OpenOldmem = %v", err)
	}
	if got := c.CPUs(); got != 2 {
		t.Errorf("CPUs() = %d, want 2", got)
	}
	if c.Info == nil || c.Info.OSRelease() != "6.1.0-test-amd64" {
		t.Errorf("Info = %+v, want OSRELEASE 6.1.0-test-amd64", c.Info)
	}
	if len(c.Loads) != 2 {
		t.Fatalf("len(Loads) = %d, want 2", len(c.Loads))
	}
	// The assembled file must parse the same way and hold the memory bytes.
	file := readAll(t, im, im.Size())
	c2, err := vmcore.Open(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatalf("Open(assembled) = %v", err)
	}
	for _, l := range c2.Loads {
		got := file[l.Offset : l.Offset+l.Filesz]
		if !bytes.Equal(got, wantMem[l.Paddr]) {
			t.Errorf("PT_LOAD paddr %#x: bytes differ from oldmem", l.Paddr)
		}
		if l.Offset%4096 != l.Paddr%4096 {
			t.Errorf("PT_LOAD paddr %#x at offset %#x: not congruent", l.Paddr, l.Offset)
		}
	}
}

func TestParseElfcorehdr(t *testing.T) {
	for _, tt := range []struct {
		cmdline string
		want    uint64
		ok      bool
		err     bool
	}{
		{"elfcorehdr=0x7f000000", 0x7f000000, true, false},
		{"a elfcorehdr=2048K b", 2 << 20, true, false},
		{"elfcorehdr=4K@16M", 16 << 20, true, false},
		{"console=ttyS0", 0, false, false},
		{"elfcorehdr=zz", 0, true, true},
	} {
		got, ok, err := vmcore.ParseElfcorehdr(tt.cmdline)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("ParseElfcorehdr(%q) = %#x, %v, %v; want %#x, %v, err %v", tt.cmdline, got, ok, err, tt.want, tt.ok, tt.err)
		}
	}
}

func TestOpenMalformed(t *testing.T) {
	im, err := vmcoretest.Core{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	good := readAll(t, im, im.Size())
	le := binary.LittleEndian
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated header", good[:40]},
		{"not ELF", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"ELF32", mod(func(b []byte) []byte { b[4] = 1; return b })},
		{"not core", mod(func(b []byte) []byte { le.PutUint16(b[16:], 2); return b })},
		{"bad phentsize", mod(func(b []byte) []byte { le.PutUint16(b[54:], 32); return b })},
		{"no phdrs", mod(func(b []byte) []byte { le.PutUint16(b[56:], 0); return b })},
		{"phdrs past end", mod(func(b []byte) []byte { le.PutUint64(b[32:], uint64(len(b))-10); return b })},
		{"PN_XNUM without sections", mod(func(b []byte) []byte { le.PutUint16(b[56:], 0xffff); return b })},
		{"load past end", mod(func(b []byte) []byte { le.PutUint64(b[64+56+32:], 1<<40); return b })},
		{"load offset overflow", mod(func(b []byte) []byte { le.PutUint64(b[64+56+8:], ^uint64(0)-5); return b })},
		{"filesz > memsz", mod(func(b []byte) []byte { le.PutUint64(b[64+56+40:], 1); return b })},
		{"note runs past segment", mod(func(b []byte) []byte { le.PutUint32(b[4096+4:], 1<<30); return b })},
		{"truncated file", good[:len(good)-4096]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vmcore.Open(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, vmcore.ErrFormat) {
				t.Errorf("Open = %v, want an error wrapping ErrFormat", err)
			}
		})
	}
}

func TestFileMmapAndPread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmcore")
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0x100000, 9 << 20}}}.WriteFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, im, im.Size())
	for _, mmap := range []bool{true, false} {
		f, err := vmcore.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Mmap = mmap
		if f.Size() != int64(len(want)) {
			t.Errorf("Size() = %d, want %d", f.Size(), len(want))
		}
		// Odd-sized reads crossing window boundaries.
		got := make([]byte, 0, len(want))
		buf := make([]byte, 1<<20+13)
		for off := int64(0); off < f.Size(); {
			n, err := f.ReadAt(buf, off)
			got = append(got, buf[:n]...)
			off += int64(n)
			if err != nil && err != io.EOF {
				t.Fatalf("ReadAt(%d) = %v", off, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("mmap=%v: contents differ", mmap)
		}
		if mmap && !f.Mmap {
			t.Errorf("mmap of a regular file failed and fell back to pread")
		}
		f.Close()
	}
}

func FuzzOpen(f *testing.F) {
	im, err := vmcoretest.Core{Segments: [][2]uint64{{0x1000, 8192}}}.Build()
	if err != nil {
		f.Fatal(err)
	}
	b := make([]byte, im.Size())
	im.ReadAt(b, 0)
	f.Add(b)
	f.Add(b[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		// A bytes.Reader does not fail: every error is about the data.
		c, err := vmcore.Open(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, vmcore.ErrFormat) {
			t.Fatalf("Open = %v, want an ErrFormat", err)
		}
		if err == nil {
			c.CPUs()
			c.MemoryBytes()
		}
		if err == nil {
			// The same bytes as oldmem with the header at 0 must not panic either.
			if _, _, err := vmcore.OpenOldmem(bytes.NewReader(data), 0); err != nil && !errors.Is(err, vmcore.ErrFormat) {
				t.Fatalf("OpenOldmem = %v, want an ErrFormat", err)
			}
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte(vmcoretest.Info))
	f.Add([]byte("SYMBOL(x)=zz\nCRASHTIME=-1\n=\n\x00junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := vmcore.ParseInfo(data)
		in.OSRelease()
		in.PageSize()
		in.CrashTime()
		in.Symbol("x")
	})
}
