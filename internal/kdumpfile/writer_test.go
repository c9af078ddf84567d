// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// TestIncompleteUntilClose checks that a writer that dies before Close (an
// OOM, a power cut, a killed process) leaves a file whose header says
// incomplete, and that Close clears the mark last, after syncing the data.
func TestIncompleteUntilClose(t *testing.T) {
	tc := newTestCore(t, 7, [][2]uint64{{0, 0x40000}})
	var f memFile
	var events []string
	sync := func() error {
		kf, err := Open(&f)
		if err != nil {
			t.Fatalf("Open at sync = %v", err)
		}
		events = append(events, map[bool]string{true: "sync(incomplete)", false: "sync(complete)"}[kf.Incomplete()])
		return nil
	}
	w, err := NewWriter(&f, Params{Notes: tc.notes, Codec: CodecZlib, BufferSize: 2 * testPageSize, Sync: sync}, tc.present, tc.present)
	if err != nil {
		t.Fatalf("NewWriter = %v", err)
	}
	c, _ := NewCompressor(CodecZlib, testPageSize)
	for pfn := range tc.present.Len() {
		out, flags := c.Compress(nil, tc.page(t, pfn))
		if err := w.WritePage(pfn, out, flags, false); err != nil {
			t.Fatalf("WritePage(%d) = %v", pfn, err)
		}
		if pfn == 20 {
			// The writer "dies" here: what is in the sink says incomplete.
			died := memFile{b: bytes.Clone(f.b)}
			kf, err := Open(&died)
			if err != nil {
				t.Fatalf("Open of the file of a writer killed mid-dump = %v", err)
			}
			if !kf.Incomplete() || kf.Header().Status&StatusIncomplete == 0 {
				t.Errorf("the file of a writer killed mid-dump says complete (status %#x)", kf.Header().Status)
			}
			buf := make([]byte, testPageSize)
			if err := kf.ReadPage(0, buf); err != nil || !bytes.Equal(buf, tc.page(t, 0)) {
				t.Errorf("ReadPage(0) of the killed writer's file = %v, want the page", err)
			}
			if err := kf.ReadPage(tc.present.Len()-1, buf); !errors.Is(err, ErrIncomplete) {
				t.Errorf("ReadPage(last) of the killed writer's file = %v, want ErrIncomplete", err)
			}
		}
	}
	if h := w.Header(); h.Status&StatusIncomplete == 0 {
		t.Errorf("Header().Status = %#x before Close, want the incomplete bit", h.Status)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if want := []string{"sync(incomplete)", "sync(complete)"}; !slices.Equal(events, want) {
		t.Errorf("Close synced %v, want %v (data synced before the complete header, then the header)", events, want)
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if kf.Incomplete() || w.Header().Status&StatusIncomplete != 0 {
		t.Errorf("after Close: Incomplete() = %v, Header().Status = %#x; want complete", kf.Incomplete(), w.Header().Status)
	}
}

// TestSyncFailureKeepsIncomplete: if the data cannot be made durable, the
// header is never marked complete.
func TestSyncFailureKeepsIncomplete(t *testing.T) {
	tc := newTestCore(t, 8, [][2]uint64{{0, 0x8000}})
	var f memFile
	eio := errors.New("fsync: input/output error")
	err := tc.writeDump(t, &f, Params{Notes: tc.notes, Sync: func() error { return eio }}, tc.present)
	if !errors.Is(err, eio) {
		t.Fatalf("writeDump with a failing sync = %v, want it", err)
	}
	kf, err := Open(&f)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if !kf.Incomplete() {
		t.Errorf("a dump whose sync failed says complete")
	}
}

// TestFlatFinalHeader: a flattened stream ends with a second header record
// that clears the incomplete mark; a stream cut before it reassembles (as
// far as it goes) into a file marked incomplete.
func TestFlatFinalHeader(t *testing.T) {
	tc := newTestCore(t, 9, [][2]uint64{{0, 0x20000}})
	var stream bytes.Buffer
	fw := NewFlatWriter(&stream)
	if err := tc.writeDump(t, fw, Params{Notes: tc.notes, Codec: CodecZstd}, tc.present); err != nil {
		t.Fatalf("writeDump = %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("FlatWriter.Close = %v", err)
	}
	if n := bytes.Count(stream.Bytes(), []byte(Signature)); n != 2 {
		t.Errorf("%d header records in the stream, want 2 (incomplete first, complete last)", n)
	}
	var out memFile
	if err := Reassemble(bytes.NewReader(stream.Bytes()), &out); err != nil {
		t.Fatalf("Reassemble = %v", err)
	}
	kf, err := Open(&out)
	if err != nil {
		t.Fatalf("Open(reassembled) = %v", err)
	}
	if kf.Incomplete() {
		t.Errorf("the reassembled whole stream says incomplete")
	}
}
