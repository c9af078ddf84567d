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
	"testing"
)

func TestFlattened(t *testing.T) {
	tc := newTestCore(t, 5, testSegments)
	for _, codec := range []Codec{CodecNone, CodecZlib, CodecZstd} {
		t.Run(string(codec), func(t *testing.T) {
			p := Params{Codec: codec, DumpLevel: 1, BufferSize: 5 * testPageSize}
			var direct memFile
			if err := tc.writeDump(t, &direct, p, tc.present); err != nil {
				t.Fatalf("writing the dump: %v", err)
			}
			var stream bytes.Buffer
			fw := NewFlatWriter(&stream)
			if err := tc.writeDump(t, fw, p, tc.present); err != nil {
				t.Fatalf("writing the flattened dump: %v", err)
			}
			if err := fw.Close(); err != nil {
				t.Fatalf("FlatWriter.Close = %v", err)
			}
			flat := stream.Bytes()
			if !IsFlattened(bytes.NewReader(flat)) {
				t.Errorf("IsFlattened(stream) = false")
			}
			if IsFlattened(&direct) {
				t.Errorf("IsFlattened(normal file) = true")
			}
			if _, err := Open(bytes.NewReader(flat)); !errors.Is(err, ErrFlattened) {
				t.Errorf("Open(stream) = %v, want ErrFlattened", err)
			}
			// The header record comes first, right after the stream header
			// (crash --osrelease only looks at the first strings).
			if got := binary.BigEndian.Uint64(flat[4096:]); got != 0 {
				t.Errorf("first record at offset %d, want 0", got)
			}
			if got := string(flat[4096+16 : 4096+16+8]); got != Signature {
				t.Errorf("first record starts with %q, want %q", got, Signature)
			}
			if !bytes.Equal(flat[len(flat)-16:], bytes.Repeat([]byte{0xff}, 16)) {
				t.Errorf("stream does not end with the end record: %x", flat[len(flat)-16:])
			}

			var re memFile
			if err := Reassemble(bytes.NewReader(flat), &re); err != nil {
				t.Fatalf("Reassemble = %v", err)
			}
			if !bytes.Equal(re.b, direct.b) {
				t.Fatalf("reassembled file (%d bytes) differs from the direct write (%d bytes)", len(re.b), len(direct.b))
			}
		})
	}
}

func TestReassembleErrors(t *testing.T) {
	hdr := make([]byte, 4096)
	copy(hdr, "makedumpfile")
	binary.BigEndian.PutUint64(hdr[16:], 1)
	binary.BigEndian.PutUint64(hdr[24:], 1)
	rec := func(off, size int64, data string) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(off))
		b = binary.BigEndian.AppendUint64(b, uint64(size))
		return append(b, data...)
	}
	end := rec(-1, -1, "")
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	badVersion := bytes.Clone(hdr)
	binary.BigEndian.PutUint64(badVersion[24:], 2)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
		want    string
	}{
		{"empty stream", join(hdr, end), false, ""},
		{"later record wins", join(hdr, rec(2, 3, "abc"), rec(3, 1, "X"), end), false, "\x00\x00aXc"},
		{"no header", join([]byte("KDUMP   "), make([]byte, 4088), end), true, ""},
		{"short header", hdr[:100], true, ""},
		{"bad version", join(badVersion, end), true, ""},
		{"no end record", join(hdr, rec(0, 1, "a")), true, ""},
		{"truncated data", join(hdr, rec(0, 10, "abc")), true, ""},
		{"negative size", join(hdr, rec(0, -5, ""), end), true, ""},
		{"negative offset", join(hdr, rec(-2, 1, "a"), end), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out memFile
			err := Reassemble(bytes.NewReader(tt.in), &out)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Reassemble = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && string(out.b) != tt.want {
				t.Errorf("Reassemble wrote %q, want %q", out.b, tt.want)
			}
		})
	}
}

// failWriter fails every write after the first n.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, io.ErrClosedPipe
	}
	w.n--
	return len(p), nil
}

func TestFlatWriterErrors(t *testing.T) {
	fw := NewFlatWriter(&failWriter{n: 1})
	if _, err := fw.WriteAt([]byte("x"), 0); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("WriteAt = %v, want ErrClosedPipe", err)
	}
	if _, err := fw.WriteAt([]byte("x"), 1); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("WriteAt after a failure = %v, want the same error", err)
	}
	if err := fw.Close(); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Close = %v, want ErrClosedPipe", err)
	}
	if _, err := NewFlatWriter(io.Discard).WriteAt([]byte("x"), -1); err == nil {
		t.Errorf("WriteAt at -1 = nil, want an error")
	}
}

// limitedFile is a memFile that refuses offsets past 1 MiB, so fuzzed
// streams cannot make the test allocate much.
type limitedFile struct{ memFile }

// errTooLarge is limitedFile's error.
var errTooLarge = errors.New("offset too large")

func (l *limitedFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 1<<20 {
		return 0, fmt.Errorf("offset %#x: %w", off, errTooLarge)
	}
	return l.memFile.WriteAt(p, off)
}

func FuzzReassemble(f *testing.F) {
	var stream bytes.Buffer
	fw := NewFlatWriter(&stream)
	if _, err := fw.WriteAt(tinyDump(f, CodecZlib, 1), 0); err != nil {
		f.Fatalf("WriteAt = %v", err)
	}
	fw.WriteAt([]byte("KDUMP   "), 0)         //nolint:errcheck // a later record for the same offset
	fw.WriteAt([]byte("past the end"), 1<<16) //nolint:errcheck
	if err := fw.Close(); err != nil {
		f.Fatalf("FlatWriter.Close = %v", err)
	}
	f.Add(stream.Bytes())
	f.Add(stream.Bytes()[:5000])
	f.Fuzz(func(t *testing.T, in []byte) {
		var out limitedFile
		if err := Reassemble(bytes.NewReader(in), &out); err != nil {
			// A bytes.Reader does not fail: every error is the stream's
			// (or the refused write's).
			if !errors.Is(err, ErrFormat) && !errors.Is(err, errTooLarge) {
				t.Fatalf("Reassemble = %v, want an ErrFormat", err)
			}
			return
		}
		// A stream that reassembles is either a dump or something else;
		// opening it must not panic.
		if kf, err := Open(&out); err == nil {
			kf.Close()
		}
	})
}
