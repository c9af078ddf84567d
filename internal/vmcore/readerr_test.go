// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package vmcore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// failReader reads b; its n-th ReadAt call (counting from 1; 0: none)
// returns half the bytes and EIO. calls counts the calls.
type failReader struct {
	b     []byte
	n     int
	calls int
}

func (r *failReader) ReadAt(p []byte, off int64) (int, error) {
	r.calls++
	if r.calls == r.n {
		m, _ := bytes.NewReader(r.b).ReadAt(p[:len(p)/2], off)
		return m, syscall.EIO
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}

// wantEIO checks that err is the read error, not a format error.
func wantEIO(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.EIO) || errors.Is(err, vmcore.ErrFormat) {
		t.Errorf("%s = %v, want an error wrapping EIO and not ErrFormat", call, err)
	}
}

func TestOpenReadError(t *testing.T) {
	im, err := vmcoretest.Core{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	good := readAll(t, im, im.Size())
	count := &failReader{b: good}
	if _, err := vmcore.Open(count, int64(len(good))); err != nil {
		t.Fatalf("Open = %v", err)
	}
	// The ELF header, the program headers and the notes.
	if count.calls < 3 {
		t.Fatalf("Open made %d reads, want at least 3", count.calls)
	}
	for n := 1; n <= count.calls; n++ {
		_, err := vmcore.Open(&failReader{b: good, n: n}, int64(len(good)))
		wantEIO(t, fmt.Sprintf("Open (read %d fails)", n), err)
	}
	_, err = vmcore.Open(&failReader{b: good, n: 1}, int64(len(good)))
	if want := "vmcore: read ELF header at 0x0: input/output error"; err == nil || err.Error() != want {
		t.Errorf("Open (ELF header read fails) = %v, want %q", err, want)
	}
}

func TestOpenTruncated(t *testing.T) {
	im, err := vmcoretest.Core{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	good := readAll(t, im, im.Size())
	c, err := vmcore.Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	notes := int(c.Phdrs[0].Offset)
	for _, tt := range []struct {
		name string
		end  int
	}{
		{"empty", 0},
		{"in the ELF header", 40},
		{"in the program headers", 64 + 10},
		{"in the notes", notes + 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The reader ends before the size the caller says (a file
			// that shrank): every read past the end comes up short.
			_, err := vmcore.Open(bytes.NewReader(good[:tt.end]), int64(len(good)))
			if !errors.Is(err, vmcore.ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("Open = %v, want a truncated error wrapping ErrFormat and io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestOpenOldmemReadError(t *testing.T) {
	mem, hdr := vmcoretest.Oldmem()
	count := &failReader{b: mem}
	im, _, err := vmcore.OpenOldmem(count, hdr)
	if err != nil {
		t.Fatalf("OpenOldmem = %v", err)
	}
	if count.calls < 3 {
		t.Fatalf("OpenOldmem made %d reads, want at least 3", count.calls)
	}
	for n := 1; n <= count.calls; n++ {
		_, _, err := vmcore.OpenOldmem(&failReader{b: mem, n: n}, hdr)
		wantEIO(t, fmt.Sprintf("OpenOldmem (read %d fails)", n), err)
	}

	// Reading the assembled core reads oldmem: its errors come through,
	// and oldmem ending inside a segment is no io.EOF of the core.
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatalf("Open(assembled) = %v", err)
	}
	l := c.Loads[0]
	buf := make([]byte, 4096)
	failing := &failReader{b: mem, n: count.calls + 1}
	im, _, err = vmcore.OpenOldmem(failing, hdr)
	if err != nil {
		t.Fatalf("OpenOldmem = %v", err)
	}
	_, err = im.ReadAt(buf, int64(l.Offset))
	wantEIO(t, "Image.ReadAt(PT_LOAD 0)", err)

	im, _, err = vmcore.OpenOldmem(bytes.NewReader(mem[:l.Paddr+100]), hdr)
	if err != nil {
		t.Fatalf("OpenOldmem(oldmem ending in PT_LOAD 0) = %v", err)
	}
	if _, err := im.ReadAt(buf, int64(l.Offset)); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		t.Errorf("Image.ReadAt(PT_LOAD 0) of a short oldmem = %v, want io.ErrUnexpectedEOF (not io.EOF)", err)
	}
}
