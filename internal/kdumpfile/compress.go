// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/ukdump/ukdump/internal/pagecodec"
)

// Codec is a per-page compression method of the kdump format.
type Codec string

// The codecs (pagecodec names them for the config).
const (
	CodecNone   Codec = pagecodec.None
	CodecZlib   Codec = pagecodec.Zlib
	CodecLZO    Codec = pagecodec.LZO
	CodecSnappy Codec = pagecodec.Snappy
	CodecZstd   Codec = pagecodec.Zstd
)

// Codecs lists the codecs in the order of their status bits.
var Codecs = []Codec{CodecNone, CodecZlib, CodecLZO, CodecSnappy, CodecZstd}

// Flag is the codec's status and page descriptor bit (0 for CodecNone).
func (c Codec) Flag() uint32 {
	switch c {
	case CodecZlib:
		return FlagZlib
	case CodecLZO:
		return FlagLZO
	case CodecSnappy:
		return FlagSnappy
	case CodecZstd:
		return FlagZstd
	}
	return 0
}

// valid reports whether c is a known codec ("" is not).
func (c Codec) valid() bool { return pagecodec.Valid(string(c)) }

// codecOfStatus is the codec named by a header's status bits.
func codecOfStatus(status uint32) Codec {
	switch {
	case status&FlagZlib != 0:
		return CodecZlib
	case status&FlagLZO != 0:
		return CodecLZO
	case status&FlagSnappy != 0:
		return CodecSnappy
	case status&FlagZstd != 0:
		return CodecZstd
	}
	return CodecNone
}

// Compressor compresses one page at a time with one codec, the way
// makedumpfile does: zlib level 1 with the zlib wrapper, LZO1X-1, a raw
// snappy block, or a zstd frame at the fastest level. A Compressor is not
// safe for concurrent use: make one per goroutine.
type Compressor struct {
	codec    Codec
	pageSize int
	out      sliceWriter
	zw       *zlib.Writer
	zenc     *zstd.Encoder
	lzo      *lzoCompressor
}

// NewCompressor returns a compressor for pages of pageSize bytes.
func NewCompressor(c Codec, pageSize int) (*Compressor, error) {
	if !validBlockSize(pageSize) {
		return nil, fmt.Errorf("kdumpfile: page size %d is not a power of two in [%d, %d]", pageSize, minBlockSize, maxBlockSize)
	}
	cp := &Compressor{codec: c, pageSize: pageSize}
	switch c {
	case CodecNone:
	case CodecZlib:
		zw, err := zlib.NewWriterLevel(&cp.out, zlib.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("kdumpfile: zlib writer at level %d: %w", zlib.BestSpeed, err)
		}
		cp.zw = zw
	case CodecZstd:
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // makedumpfile's ZSTD_compressCCtx writes no checksum
			zstd.WithWindowSize(max(pageSize, zstd.MinWindowSize)),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("kdumpfile: zstd encoder: %w", err)
		}
		cp.zenc = enc
	case CodecSnappy:
	case CodecLZO:
		cp.lzo = newLZOCompressor()
	default:
		return nil, fmt.Errorf("kdumpfile: unknown codec %q", c)
	}
	return cp, nil
}

// Codec is the compressor's codec.
func (c *Compressor) Codec() Codec { return c.codec }

// Compress compresses page (len(page) must be the page size) into dst's
// memory, reused from call to call. It returns the bytes to store and the
// page descriptor flags: the compressed page with the codec's flag, or, when
// that is not smaller than the page (or the codec is CodecNone), page itself
// with flags 0. out is valid until the next call with the same dst.
func (c *Compressor) Compress(dst, page []byte) (out []byte, flags uint32) {
	if len(page) != c.pageSize {
		// A short page can only be stored raw, and a raw page must be a
		// whole page; the writer rejects it.
		return page, 0
	}
	switch c.codec {
	case CodecZlib:
		c.out.b = dst[:0]
		c.zw.Reset(&c.out)
		if _, err := c.zw.Write(page); err != nil {
			return page, 0
		}
		if err := c.zw.Close(); err != nil {
			return page, 0
		}
		out = c.out.b
		c.out.b = nil
	case CodecZstd:
		out = c.zenc.EncodeAll(page, dst[:0])
	case CodecSnappy:
		if n := s2.MaxEncodedLen(len(page)); cap(dst) < n {
			dst = make([]byte, n)
		}
		out = s2.EncodeSnappy(dst[:cap(dst)], page)
	case CodecLZO:
		var ok bool
		if out, ok = c.lzo.compressLimit(dst[:0], page, len(page)-1); !ok {
			return page, 0
		}
	default:
		return page, 0
	}
	if len(out) >= len(page) || len(out) == 0 {
		return page, 0
	}
	return out, c.codec.Flag()
}

// sliceWriter is an io.Writer appending to a slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func validBlockSize(n int) bool {
	return n >= minBlockSize && n <= maxBlockSize && n&(n-1) == 0
}

// decompressor decodes pages of one file. It is not safe for concurrent use.
type decompressor struct {
	pageSize int
	zr       io.ReadCloser
	br       bytes.Reader
	zdec     *zstd.Decoder
}

// errCorrupt is wrapped by errors about page data that does not decode to a page.
var errCorrupt = errors.New("corrupt page data")

// decompress decodes src, stored with flags, into page (len = page size).
func (d *decompressor) decompress(page, src []byte, flags uint32) error {
	switch flags {
	case 0:
		if len(src) != len(page) {
			return fmt.Errorf("%w: raw page of %d bytes, want %d", errCorrupt, len(src), len(page))
		}
		copy(page, src)
		return nil
	case FlagZlib:
		d.br.Reset(src)
		if d.zr == nil {
			zr, err := zlib.NewReader(&d.br)
			if err != nil {
				return fmt.Errorf("%w: zlib: %w", errCorrupt, err)
			}
			d.zr = zr
		} else if err := d.zr.(zlib.Resetter).Reset(&d.br, nil); err != nil {
			return fmt.Errorf("%w: zlib: %w", errCorrupt, err)
		}
		if _, err := io.ReadFull(d.zr, page); err != nil {
			return fmt.Errorf("%w: zlib: %w", errCorrupt, err)
		}
		// The stream must end here, and its checksum must match.
		var one [1]byte
		if n, err := d.zr.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("more than a page of data")
			}
			return fmt.Errorf("%w: zlib: %w", errCorrupt, err)
		}
		return nil
	case FlagZstd:
		if d.zdec == nil {
			// Output is bounded by the page (cap limit); the window a
			// frame declares may be larger than the page (zstd's minimum
			// is 1 KiB, and other writers may use more).
			dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(max(uint64(len(page)), 8<<20)), zstd.WithDecodeAllCapLimit(true))
			if err != nil {
				return fmt.Errorf("zstd decoder: %w", err)
			}
			d.zdec = dec
		}
		out, err := d.zdec.DecodeAll(src, page[:0:len(page)])
		if err != nil {
			return fmt.Errorf("%w: zstd: %w", errCorrupt, err)
		}
		if len(out) != len(page) {
			return fmt.Errorf("%w: zstd: %d bytes, want %d", errCorrupt, len(out), len(page))
		}
		return nil
	case FlagSnappy:
		n, err := s2.DecodedLen(src)
		if err != nil {
			return fmt.Errorf("%w: snappy: %w", errCorrupt, err)
		}
		if n != len(page) {
			return fmt.Errorf("%w: snappy: %d bytes, want %d", errCorrupt, n, len(page))
		}
		if _, err := s2.Decode(page, src); err != nil {
			return fmt.Errorf("%w: snappy: %w", errCorrupt, err)
		}
		return nil
	case FlagLZO:
		n, err := lzoDecompress(page, src)
		if err != nil {
			return fmt.Errorf("%w: lzo: %w", errCorrupt, err)
		}
		if n != len(page) {
			return fmt.Errorf("%w: lzo: %d bytes, want %d", errCorrupt, n, len(page))
		}
		return nil
	}
	return fmt.Errorf("%w: unknown compression flags %#x", errCorrupt, flags)
}

func (d *decompressor) close() {
	if d.zdec != nil {
		d.zdec.Close()
	}
}
