// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The flattened format (makedumpfile -F): a 4096-byte header, then records
// of (offset, size) and size bytes that belong at offset of the normal file,
// then an end record (-1, -1). All integers are big-endian.
const (
	flatSignature   = "makedumpfile"
	flatHeaderSize  = 4096
	flatTypeHeader  = 1
	flatVersion     = 1
	flatRecordSize  = 16
	flatCopyChunk   = 1 << 20
	flatCoalesceMax = 64 << 10
)

// FlatWriter turns the writes of a Writer into a flattened stream, for a
// pipe or any sink that cannot seek. It implements io.WriterAt: each WriteAt
// becomes one record, in call order; a later record for the same offset
// wins when the stream is reassembled. Its methods may be called from
// several goroutines.
type FlatWriter struct {
	mu      sync.Mutex
	w       io.Writer
	started bool
	closed  bool
	err     error
	buf     []byte
}

// NewFlatWriter returns a FlatWriter on w. The stream's header is written
// with the first record.
func NewFlatWriter(w io.Writer) *FlatWriter { return &FlatWriter{w: w} }

func (f *FlatWriter) start() error {
	if f.started {
		return nil
	}
	f.started = true
	h := make([]byte, flatHeaderSize)
	copy(h, flatSignature)
	binary.BigEndian.PutUint64(h[16:], flatTypeHeader)
	binary.BigEndian.PutUint64(h[24:], flatVersion)
	return f.write(h)
}

func (f *FlatWriter) write(b []byte) error {
	if _, err := f.w.Write(b); err != nil {
		f.err = fmt.Errorf("kdumpfile: writing the flattened stream: %w", err)
		return f.err
	}
	return nil
}

// WriteAt emits p as the record for offset off.
func (f *FlatWriter) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errors.New("kdumpfile: WriteAt on a closed FlatWriter")
	}
	if f.err != nil {
		return 0, f.err
	}
	if off < 0 {
		return 0, fmt.Errorf("kdumpfile: flattened record at negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.start(); err != nil {
		return 0, err
	}
	var rec [flatRecordSize]byte
	binary.BigEndian.PutUint64(rec[0:], uint64(off))
	binary.BigEndian.PutUint64(rec[8:], uint64(len(p)))
	if len(p) <= flatCoalesceMax {
		// One write for record header and data.
		f.buf = append(append(f.buf[:0], rec[:]...), p...)
		if err := f.write(f.buf); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := f.write(rec[:]); err != nil {
		return 0, err
	}
	if err := f.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes the end record (and the header, if nothing was written). It
// does not close the underlying writer.
func (f *FlatWriter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.err != nil {
		return f.err
	}
	if err := f.start(); err != nil {
		return err
	}
	var end [flatRecordSize]byte
	for i := range end {
		end[i] = 0xff
	}
	return f.write(end[:])
}

// IsFlattened reports whether r starts with a makedumpfile flattened header.
// A failed read reports false; Open, reading the same bytes, returns the error.
func IsFlattened(r io.ReaderAt) bool {
	var h [32]byte
	if n, _ := r.ReadAt(h[:], 0); n < len(h) {
		return false
	}
	return isFlatHeader(h[:])
}

func isFlatHeader(h []byte) bool {
	sig := h[:16]
	if string(sig[:len(flatSignature)]) != flatSignature {
		return false
	}
	for _, c := range sig[len(flatSignature):] {
		if c != 0 {
			return false
		}
	}
	return binary.BigEndian.Uint64(h[16:]) == flatTypeHeader
}

// Reassemble reads a flattened stream from r and writes each record at its
// offset in w, giving the normal file (makedumpfile -R). It fails with
// ErrFormat on a malformed stream or one that ends without its end record
// (then also io.ErrUnexpectedEOF), and with the reader's or writer's error
// when a read or write fails.
func Reassemble(r io.Reader, w io.WriterAt) error {
	h := make([]byte, flatHeaderSize)
	if n, err := io.ReadFull(r, h); err != nil {
		return fmt.Errorf("kdumpfile: %w", readErr("flattened header", 0, uint64(n), flatHeaderSize, err))
	}
	if !isFlatHeader(h) {
		return fmt.Errorf("kdumpfile: %w: no flattened header (signature %q)", ErrFormat, h[:16])
	}
	if v := binary.BigEndian.Uint64(h[24:]); v != flatVersion {
		return fmt.Errorf("kdumpfile: %w: flattened format version %d, want %d", ErrFormat, v, flatVersion)
	}
	var rec [flatRecordSize]byte
	var buf []byte
	pos := int64(flatHeaderSize)
	for {
		if n, err := io.ReadFull(r, rec[:]); err != nil {
			return fmt.Errorf("kdumpfile: %w", readErr("flattened record header", pos, uint64(n), flatRecordSize, err))
		}
		off := int64(binary.BigEndian.Uint64(rec[0:]))
		size := int64(binary.BigEndian.Uint64(rec[8:]))
		if off == -1 && size == -1 {
			return nil
		}
		if off < 0 || size < 0 || off > (1<<62)-size {
			return fmt.Errorf("kdumpfile: %w: flattened record at %#x: offset %d, size %d", ErrFormat, pos, off, size)
		}
		pos += flatRecordSize
		for done := int64(0); done < size; {
			k := min(size-done, flatCopyChunk)
			if int64(cap(buf)) < k {
				buf = make([]byte, k)
			}
			b := buf[:k]
			if n, err := io.ReadFull(r, b); err != nil {
				what := fmt.Sprintf("flattened record data (%d bytes for offset %#x)", size, off)
				return fmt.Errorf("kdumpfile: %w", readErr(what, pos, uint64(done)+uint64(n), uint64(size), err))
			}
			if _, err := w.WriteAt(b, off+done); err != nil {
				return fmt.Errorf("kdumpfile: writing %d bytes at %#x: %w", k, off+done, err)
			}
			done += k
		}
		pos += size
	}
}
