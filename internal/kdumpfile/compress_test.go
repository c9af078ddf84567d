// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ukdump/ukdump/internal/pagecodec"
)

// testPages are pages of the kinds memory holds.
func testPages(size int) map[string][]byte {
	rng := rand.New(rand.NewPCG(9, 9))
	random := make([]byte, size)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := make([]byte, size)
	line := "kernel: [    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\n"
	for i := range text {
		text[i] = line[i%len(line)]
	}
	// Mostly random with a repeat far back: long distances, short literal
	// runs, long literal runs.
	mixed := bytes.Clone(random)
	copy(mixed[size-300:], mixed[10:300])
	copy(mixed[size/2:], mixed[size/2-5:size/2+40])
	copy(mixed[100:], "abcdabcdabcdabcdabcd")
	sparse := make([]byte, size)
	for i := 0; i < size; i += 97 {
		sparse[i] = byte(i)
	}
	return map[string][]byte{
		"zero":   make([]byte, size),
		"random": random,
		"text":   text,
		"mixed":  mixed,
		"sparse": sparse,
	}
}

func TestCompressor(t *testing.T) {
	pages := testPages(testPageSize)
	for _, codec := range Codecs {
		c, err := NewCompressor(codec, testPageSize)
		if err != nil {
			t.Fatalf("NewCompressor(%q) = %v", codec, err)
		}
		var dst []byte
		for name, page := range pages {
			t.Run(string(codec)+"/"+name, func(t *testing.T) {
				out, flags := c.Compress(dst, page)
				// "mixed" is mostly random: some codecs squeeze it, some not.
				compressible := name != "random" && name != "mixed" && codec != CodecNone
				switch {
				case flags != 0 && (flags != codec.Flag() || len(out) >= len(page)):
					t.Fatalf("Compress(%s) = %d bytes, flags %#x; want fewer than %d bytes for flags %#x", name, len(out), flags, len(page), codec.Flag())
				case flags == 0 && !bytes.Equal(out, page):
					t.Fatalf("Compress(%s) = %d bytes, flags 0; want the page itself", name, len(out))
				}
				switch {
				case compressible && flags == 0:
					t.Fatalf("Compress(%s) stored the page raw; want it compressed", name)
				case (name == "random" || codec == CodecNone) && flags != 0:
					t.Fatalf("Compress(%s) = flags %#x; want the page itself, flags 0", name, flags)
				}
				var d decompressor
				got := make([]byte, testPageSize)
				if err := d.decompress(got, out, flags); err != nil {
					t.Fatalf("decompress = %v", err)
				}
				if !bytes.Equal(got, page) {
					t.Fatalf("decompress(Compress(%s)) differs", name)
				}
				if flags == 0 {
					return
				}
				dst = out
				// The framing crash and makedumpfile expect.
				switch codec {
				case CodecZlib:
					if out[0] != 0x78 || out[1] != 0x01 {
						t.Errorf("zlib header %x, want 7801 (level 1 with the zlib wrapper)", out[:2])
					}
				case CodecZstd:
					if !bytes.Equal(out[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
						t.Errorf("zstd frame magic %x", out[:4])
					}
				case CodecSnappy:
					if !bytes.Equal(out[:2], []byte{0x80, 0x20}) {
						t.Errorf("snappy block starts %x, want the varint 4096 (8020)", out[:2])
					}
				case CodecLZO:
					if !bytes.Equal(out[len(out)-3:], []byte{0x11, 0, 0}) {
						t.Errorf("LZO stream ends %x, want 110000", out[len(out)-3:])
					}
				}
			})
		}
	}
}

func TestDecompressErrors(t *testing.T) {
	c, _ := NewCompressor(CodecZlib, testPageSize)
	text := testPages(testPageSize)["text"]
	zout, _ := c.Compress(nil, text)
	zs, _ := NewCompressor(CodecZstd, testPageSize)
	zsout, _ := zs.Compress(nil, text)
	half, _ := NewCompressor(CodecZlib, minBlockSize)
	halfOut, _ := half.Compress(nil, text[:minBlockSize])
	tests := []struct {
		name  string
		src   []byte
		flags uint32
	}{
		{"short raw page", text[:100], 0},
		{"zlib garbage", []byte("not zlib at all"), FlagZlib},
		{"zlib truncated", zout[:len(zout)-3], FlagZlib},
		{"zlib bad checksum", append(bytes.Clone(zout[:len(zout)-1]), zout[len(zout)-1]^1), FlagZlib},
		{"zlib short page", halfOut, FlagZlib},
		{"zstd garbage", []byte("not zstd"), FlagZstd},
		{"zstd truncated", zsout[:len(zsout)/2], FlagZstd},
		{"snappy garbage", []byte{0xff, 0xff, 0xff}, FlagSnappy},
		{"snappy wrong length", []byte{0x10, 0x3c, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'}, FlagSnappy},
		{"lzo garbage", []byte{0x01}, FlagLZO},
		{"unknown flags", []byte{1}, 0x40},
		{"two flags", zout, FlagZlib | FlagZstd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d decompressor
			if err := d.decompress(make([]byte, testPageSize), tt.src, tt.flags); err == nil {
				t.Errorf("decompress = nil, want an error")
			}
		})
	}
}

func TestLZORoundTrip(t *testing.T) {
	// Page sizes up to 64 KiB reach M4 distances (> 16 KiB).
	for _, size := range []int{512, 4096, 16384, 65536} {
		pages := testPages(size)
		big := make([]byte, size)
		rng := rand.New(rand.NewPCG(1, uint64(size)))
		for i := range big {
			big[i] = byte(rng.Uint32())
		}
		if size >= 65536 {
			// A block 40 KiB back: an M4 match.
			copy(big[size-1000:], big[size-41000:size-40000])
			pages["far"] = big
		}
		// Literal runs of every length class between matches.
		runs := make([]byte, 0, size)
		for k := 1; len(runs) < size; k++ {
			for j := 0; j < k%300 && len(runs) < size; j++ {
				runs = append(runs, byte(rng.Uint32()))
			}
			for j := 0; j < 9 && len(runs) < size; j++ {
				runs = append(runs, "ABCDEFGHI"[j])
			}
		}
		pages["runs"] = runs
		for name, page := range pages {
			t.Run(fmt.Sprintf("%d/%s", size, name), func(t *testing.T) {
				var c lzoCompressor
				out := c.compress(nil, page)
				got := make([]byte, size)
				n, err := lzoDecompress(got, out)
				if err != nil || n != size {
					t.Fatalf("lzoDecompress = %d, %v; want %d", n, err, size)
				}
				if !bytes.Equal(got, page) {
					t.Fatalf("round trip differs")
				}
				t.Logf("%d -> %d bytes", size, len(out))
			})
		}
	}
}

// TestLZODecompressKnown decodes hand-made streams that use the
// instructions our encoder never emits (M1, long first literal runs).
func TestLZODecompressKnown(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		// 4 literals (first byte 17+4), then M2 len 3 dist 4 with S=0, end.
		{"literals and M2", []byte{21, 'a', 'b', 'c', 'd', 0x40 | 3<<2, 0, 0x11, 0, 0}, "abcdabc"},
		// 2 literals, then M3 of length 4 at distance 2 with S=1, a literal,
		// then M1 (after 1 literal: 2 bytes at (H<<2)+D+1 = 1), end.
		{"M3 and M1", []byte{19, 'x', 'y', 0x22, 1<<2 | 1, 0, 'z', 0x00, 0, 0x11, 0, 0}, "xyxyxyzzz"},
		// After a literal run of 4 (state 4), an M1 copies 3 bytes from
		// distance 2049+: needs 2049 bytes of history first.
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]byte, len(tt.want))
			n, err := lzoDecompress(got, tt.in)
			if err != nil || string(got[:n]) != tt.want {
				t.Errorf("lzoDecompress = %q, %v; want %q", got[:n], err, tt.want)
			}
		})
	}
}

func FuzzLZO(f *testing.F) {
	for _, p := range testPages(512) {
		f.Add(p)
	}
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Decoding arbitrary bytes must not panic.
		out := make([]byte, 4096)
		lzoDecompress(out, in) //nolint:errcheck
		// Encoding must round-trip.
		var c lzoCompressor
		enc := c.compress(nil, in)
		got := make([]byte, len(in))
		n, err := lzoDecompress(got, enc)
		if err != nil || n != len(in) || !bytes.Equal(got, in) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(in), n, err)
		}
	})
}

// TestLZOReuse compresses pages one after another with one compressor, the
// way collect does: positions left in the table by earlier pages must never
// be taken for matches.
func TestLZOReuse(t *testing.T) {
	pages := testPages(4096)
	var c lzoCompressor
	for round := range 3 {
		for _, name := range []string{"text", "mixed", "sparse", "zero", "random", "text", "sparse"} {
			page := pages[name]
			out := c.compress(nil, page)
			got := make([]byte, len(page))
			if n, err := lzoDecompress(got, out); err != nil || n != len(page) || !bytes.Equal(got, page) {
				t.Fatalf("round %d, %s after other pages: lzoDecompress = %d, %v (equal %v)", round, name, n, err, bytes.Equal(got, page))
			}
		}
	}
}

// TestLZOLimit: compressLimit gives up on a page that does not fit the
// limit and returns the same stream as compress on one that fits.
func TestLZOLimit(t *testing.T) {
	pages := testPages(4096)
	var c lzoCompressor
	if _, ok := c.compressLimit(nil, pages["random"], 4095); ok {
		t.Errorf("compressLimit(random, 4095) = ok; want false (random data does not compress)")
	}
	want := c.compress(nil, pages["text"])
	// It may give up a few bytes early (its bound of a literal run's cost).
	got, ok := c.compressLimit(nil, pages["text"], len(want)+16)
	if !ok || !bytes.Equal(got, want) {
		t.Errorf("compressLimit(text, %d) = %d bytes, %v; want the %d bytes of compress", len(want)+16, len(got), ok, len(want))
	}
	if _, ok := c.compressLimit(nil, pages["text"], len(want)-1); ok {
		t.Errorf("compressLimit(text, %d) = ok; want false (the stream is %d bytes)", len(want)-1, len(want))
	}
}

// TestCodecsArePagecodecNames: the config's names (pagecodec) are the
// codecs kdumpfile implements, in the same order.
func TestCodecsArePagecodecNames(t *testing.T) {
	var got []string
	for _, c := range Codecs {
		got = append(got, string(c))
	}
	if !slices.Equal(got, pagecodec.Names) {
		t.Errorf("Codecs = %q, pagecodec.Names = %q; want the same", got, pagecodec.Names)
	}
}

// encodeBoth runs encode (the assembly on amd64) and encodeGeneric on src
// with the same table state and limit, and fails unless they agree on
// every byte, the length and ok.
func encodeBoth(t *testing.T, src []byte, limit int) {
	t.Helper()
	var a, g lzoCompressor
	// The same table of an earlier call, so that stale entries are seen.
	a.compressLimit(nil, src, lzoBound(len(src)))
	g.table, g.base = a.table, a.base
	base := a.base
	a.base += uint32(len(src)) + 1
	g.base = a.base
	oa, og := make([]byte, limit), make([]byte, limit)
	na, oka := a.encode(src, oa, base)
	ng, okg := g.encodeGeneric(src, og, base)
	if oka != okg || (oka && (na != ng || !bytes.Equal(oa[:na], og[:ng]))) {
		t.Fatalf("%d bytes, limit %d: encode = %d bytes, %v; encodeGeneric = %d bytes, %v (streams equal: %v)",
			len(src), limit, na, oka, ng, okg, na == ng && bytes.Equal(oa[:na], og[:ng]))
	}
	if a.table != g.table {
		t.Fatalf("%d bytes, limit %d: encode and encodeGeneric leave different tables", len(src), limit)
	}
}

// TestLZOEncodeGeneric: the encoder of this architecture writes the stream
// of the Go reference, byte for byte, on every kind of page, at every page
// size (M4 distances need more than 16 KiB; far matches more than 48 KiB)
// and at limits that make it give up.
func TestLZOEncodeGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, size := range []int{0, 1, 8, 9, 12, 13, 100, 512, 4096, 16384, 65536, 131072} {
		pages := testPages(max(size, 512))
		for name, p := range pages {
			p = p[:min(size, len(p))]
			for _, limit := range []int{lzoBound(len(p)), len(p) - 1, len(p) / 2, len(p) / 8} {
				if limit < 0 {
					continue
				}
				t.Run(fmt.Sprintf("%d/%s/%d", size, name, limit), func(t *testing.T) { encodeBoth(t, p, limit) })
			}
		}
		// Repeats at every distance class, with literal runs of every
		// length class between them.
		b := make([]byte, 0, size)
		for len(b) < size {
			switch k := rng.IntN(4); {
			case k == 0 || len(b) < 16:
				for range rng.IntN(300) + 1 {
					b = append(b, byte(rng.Uint32()))
				}
			default:
				d := []int{rng.IntN(2048) + 1, rng.IntN(16384) + 1, rng.IntN(65536) + 1}[k-1]
				d = min(d, len(b))
				m := rng.IntN(600) + 1
				for range m {
					b = append(b, b[len(b)-d])
				}
			}
		}
		b = b[:size]
		t.Run(fmt.Sprintf("%d/repeats", size), func(t *testing.T) { encodeBoth(t, b, lzoBound(len(b))) })
		// Struct pages: 64-byte records alike but for a pointer to
		// themselves, twice (the last two distances at work).
		sp := make([]byte, size)
		for r := 0; r+64 <= size; r += 64 {
			binary.LittleEndian.PutUint64(sp[r:], 0x0017ffffc0000000)
			binary.LittleEndian.PutUint64(sp[r+8:], 0xff9177b913734008+uint64(r))
			binary.LittleEndian.PutUint64(sp[r+16:], 0xff9177b913734008+uint64(r))
			binary.LittleEndian.PutUint32(sp[r+48:], 0xffffffff)
		}
		t.Run(fmt.Sprintf("%d/structs", size), func(t *testing.T) { encodeBoth(t, sp, lzoBound(len(sp))) })
	}
}

func FuzzLZOEncode(f *testing.F) {
	for _, p := range testPages(512) {
		f.Add(p, uint16(600))
	}
	f.Add([]byte("abcdabcdabcdabcdXabcdabcdeabcdabcdabcd0123456789abcdefghij"), uint16(30))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		encodeBoth(t, in, int(limit))
		encodeBoth(t, in, lzoBound(len(in)))
	})
}
