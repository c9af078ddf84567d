// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
)

// failReader reads b; its n-th ReadAt call (counting from 1; 0: none)
// returns half the bytes and EIO. It records every call's offset and
// length.
type failReader struct {
	b     []byte
	n     int
	reads [][2]int64
}

func (r *failReader) ReadAt(p []byte, off int64) (int, error) {
	r.reads = append(r.reads, [2]int64{off, int64(len(p))})
	if len(r.reads) == r.n {
		m, _ := bytes.NewReader(r.b).ReadAt(p[:len(p)/2], off)
		return m, syscall.EIO
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}

// wantEIO checks that err is the read error, not a format error.
func wantEIO(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrFormat) {
		t.Errorf("%s = %v, want an error wrapping EIO and not ErrFormat", call, err)
	}
}

// wantTruncated checks that err says the input is truncated.
func wantTruncated(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(fmt.Sprint(err), "truncated") {
		t.Errorf("%s = %v, want a truncated error wrapping ErrFormat and io.ErrUnexpectedEOF", call, err)
	}
}

func TestOpenReadError(t *testing.T) {
	good := smallDump(t, CodecZlib, 1)
	trace := &failReader{b: good}
	if _, err := Open(trace); err != nil {
		t.Fatalf("Open = %v", err)
	}
	// The header, the sub-header, two bitmaps, the notes and VMCOREINFO.
	if len(trace.reads) < 6 {
		t.Fatalf("Open made %d reads, want at least 6", len(trace.reads))
	}
	for i, rd := range trace.reads {
		_, err := Open(&failReader{b: good, n: i + 1})
		wantEIO(t, fmt.Sprintf("Open (read of %d bytes at %#x fails)", rd[1], rd[0]), err)
		_, err = Open(bytes.NewReader(good[:rd[0]+rd[1]/2]))
		wantTruncated(t, fmt.Sprintf("Open (cut at %#x, in the read of %d bytes at %#x)", rd[0]+rd[1]/2, rd[1], rd[0]), err)
	}
	_, err := Open(&failReader{b: good, n: 1})
	if want := "kdumpfile: read header at 0x0: input/output error"; err == nil || err.Error() != want {
		t.Errorf("Open (header read fails) = %v, want %q", err, want)
	}
}

func TestReadPageReadError(t *testing.T) {
	good := smallDump(t, CodecZlib, 0)
	incomplete := bytes.Clone(good)
	le := binary.LittleEndian
	le.PutUint32(incomplete[424:], le.Uint32(incomplete[424:])|StatusIncomplete)

	kf, err := Open(bytes.NewReader(good))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	pfn, _ := kf.Dumpable().NextSet(0)
	descAt := kf.descOff + int64(kf.index(pfn))*descSize
	d, err := kf.PageDesc(pfn)
	if err != nil {
		t.Fatalf("PageDesc(%#x) = %v", pfn, err)
	}
	buf := make([]byte, kf.PageSize())

	// Fail the n-th read after Open: 1 is the descriptor, 2 the data.
	readPage := func(in []byte, n int) error {
		r := &failReader{b: in}
		kf, err := Open(r)
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		r.n = len(r.reads) + n
		return kf.ReadPage(pfn, buf)
	}
	wantEIO(t, "ReadPage (descriptor read fails)", readPage(good, 1))
	wantEIO(t, "ReadPage (data read fails)", readPage(good, 2))
	if err := readPage(incomplete, 2); errors.Is(err, ErrIncomplete) {
		t.Errorf("ReadPage (incomplete dump, data read fails) = %v, want EIO, not ErrIncomplete", err)
	}

	cut := func(in []byte, end int64) error {
		kf, err := Open(bytes.NewReader(in[:end]))
		if err != nil {
			t.Fatalf("Open(cut at %#x) = %v", end, err)
		}
		return kf.ReadPage(pfn, buf)
	}
	wantTruncated(t, "ReadPage (cut in the descriptor)", cut(good, descAt+descSize/2))
	wantTruncated(t, "ReadPage (cut in the data)", cut(good, d.Offset+int64(d.Size)/2))
	if err := cut(incomplete, d.Offset+int64(d.Size)/2); !errors.Is(err, ErrIncomplete) {
		t.Errorf("ReadPage (incomplete dump, cut in the data) = %v, want ErrIncomplete", err)
	}
}

func TestReassembleReadError(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFlatWriter(&stream)
	if _, err := fw.WriteAt(tinyDump(t, CodecZlib, 1), 0); err != nil {
		t.Fatalf("WriteAt = %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("FlatWriter.Close = %v", err)
	}
	s := stream.Bytes()
	for _, tt := range []struct {
		name string
		end  int
	}{
		{"at the start", 0},
		{"in the header", 100},
		{"after the header", flatHeaderSize},
		{"in a record header", flatHeaderSize + 8},
		{"in a record", flatHeaderSize + flatRecordSize + 10},
		{"before the end record", len(s) - flatRecordSize},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out memFile
			err := Reassemble(io.MultiReader(bytes.NewReader(s[:tt.end]), iotest.ErrReader(syscall.EIO)), &out)
			wantEIO(t, "Reassemble (read error)", err)
			err = Reassemble(bytes.NewReader(s[:tt.end]), &out)
			wantTruncated(t, "Reassemble (cut)", err)
		})
	}
}
