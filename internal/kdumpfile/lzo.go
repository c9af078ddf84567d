// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// LZO1X, the format of makedumpfile -l pages (lzo1x_1_compress), written
// from the published description of the bitstream (Linux
// Documentation/staging/lzo.rst). Instructions, by first byte:
//
//	first byte 18..255   a literal run of byte-17 literals (only at the start)
//	0..15  after 0 lits  a literal run of 3+L literals (L = 0: 18 + extended length)
//	0..15  after 1..3    M1: copy 2 bytes, distance (H<<2)+D+1
//	0..15  after ≥4 lits M1: copy 3 bytes, distance (H<<2)+D+2049
//	16..31               M4: copy 2+L bytes, distance 16384+(H<<14)+D; D = 0 ends the stream
//	32..63               M3: copy 2+L bytes, distance D+1 (D from a LE16 >> 2)
//	64..255              M2: copy 3..8 bytes, distance (H<<3)+D+1
//
// Every match instruction carries in its low 2 bits (of the opcode for
// M1/M2, of the LE16 for M3/M4) the number S (0..3) of literals copied right
// after it; S = 0 lets a literal run follow. The encoder below is a greedy
// single-pass LZ77 with a hash table of 4-byte sequences (the scheme of
// LZO1X-1) that also tries, in the first bytes after a match, the last two
// match distances before the table's candidate; it emits literal runs, M2,
// M3 and M4, never M1. Any LZO1X decoder reads its streams.

const (
	// lzoHashBits: 2^14 slots for a page's 4096 positions. Measured on a
	// core's kernel pages (dump level 31) and its mixed pages, one CPU,
	// against 2^13: 7% and 4% faster (fewer collisions, so fewer slots
	// of a good match overwritten and fewer probes in literals), and 0.5%
	// smaller on mixed pages; 2^15 and 2^16 gain under 1% more.
	lzoHashBits = 14
	lzoM2MaxLen = 8
	lzoM2MaxOff = 2048
	lzoM3MaxOff = 16384
	lzoM4MaxOff = 49151
	lzoMinMatch = 4
	// lzoRepProbes: up to this many bytes after a match, the last two
	// match distances are tried first. Struct pages (64-byte records alike
	// but for a few bytes, most of a big machine's dump) then match record
	// to record instead of the nearest run of zeros the table points at:
	// on a 64 GiB guest's dump the stream is 29% smaller (0.70x liblzo's,
	// against 0.98x) and 1.1x faster; on kernel pages 2% smaller for about
	// 10% of the speed. 1 gains only half of that.
	lzoRepProbes = 3
)

type lzoCompressor struct {
	// table holds, per hash of a 4-byte sequence, base+position of its
	// last occurrence. Values below base are from earlier calls: none. So
	// a call does not clear the table's 64 KiB for a 4 KiB page; it is
	// cleared once in 2^31 bytes of input.
	table [1 << lzoHashBits]uint32
	base  uint32
}

func newLZOCompressor() *lzoCompressor { return &lzoCompressor{} }

func lzoHash(v uint32) uint32 { return (v * 0x9E3779B1) >> (32 - lzoHashBits) }

// compress appends the LZO1X stream of src to dst.
func (c *lzoCompressor) compress(dst, src []byte) []byte {
	out, _ := c.compressLimit(dst, src, lzoBound(len(src)))
	return out
}

// lzoBound is a limit compressLimit never gives up at: more than the
// longest LZO1X stream of n bytes (all literals, the extended length's bytes
// and the end marker) by its own bound's slack.
func lzoBound(n int) int { return n + n>>7 + 16 }

// next returns the position of the next match at or after i and its
// candidate, or cand < 0 when there is none before the last 8 bytes (the
// loop loads 8). It is the encoder's hot loop, apart from the match and
// literal writing so that its few variables stay in registers.
func (c *lzoCompressor) next(src []byte, i, lit, rep0, rep1 int, base uint32, far bool) (at, cand int) {
	for i < len(src)-8 {
		v := binary.LittleEndian.Uint32(src[i:])
		h := lzoHash(v)
		e := c.table[h]
		c.table[h] = base + uint32(i)
		if d := i - lit; d <= lzoRepProbes {
			if d > 0 && rep0 > 0 && binary.LittleEndian.Uint32(src[i-rep0:]) == v {
				return i, i - rep0
			}
			if rep1 > 0 && binary.LittleEndian.Uint32(src[i-rep1:]) == v {
				return i, i - rep1
			}
		}
		cand := int(e) - int(base)
		if e >= base && binary.LittleEndian.Uint32(src[cand:]) == v && (!far || i-cand <= lzoM4MaxOff) {
			return i, cand
		}
		// Skip faster through data that does not compress.
		i += 1 + (i-lit)>>5
	}
	return i, -1
}

// compressLimit is compress that gives up (ok false, dst's contents
// unspecified) once the stream could exceed limit bytes; it may give up on
// one that would come within 16 bytes of limit (its bounds of a literal
// run's cost are cheap, not exact). A page that does not compress is stored
// raw, so encoding the rest of it is wasted. It writes into dst's spare
// capacity by index (no append in the loop), so it grows dst first if that
// is less than limit.
func (c *lzoCompressor) compressLimit(dst, src []byte, limit int) (out []byte, ok bool) {
	n := len(src)
	if c.base == 0 || uint64(c.base)+uint64(n) >= 1<<31 {
		// 0 is the table's empty entry: bases start at 1.
		clear(c.table[:])
		c.base = 1
	}
	base := c.base
	c.base += uint32(n) + 1
	start := len(dst)
	if cap(dst)-start < limit {
		dst = append(dst[:start:start], make([]byte, limit)...)
	}
	op, ok := c.encode(src, dst[start:start+limit], base)
	if !ok {
		return dst, false
	}
	return dst[:start+op], true
}

// encodeGeneric writes the stream of src into o and returns its length, or
// ok false once it could exceed len(o). base is the table's base for this
// call. It is the encoder on every architecture but amd64, and there the
// reference that the assembly (lzo_amd64.s) must match byte for byte.
func (c *lzoCompressor) encodeGeneric(src, o []byte, base uint32) (op int, ok bool) {
	n := len(src)
	limit := len(o)
	sPos := -1         // index in o of the byte holding the last match's S bits
	rep0, rep1 := 0, 0 // the last two distinct match distances
	lit := 0           // start of the pending literals
	i := 0
	// Pages up to 48 KiB are never too far back for an M4 match.
	far := n > lzoM4MaxOff
	for {
		var cand int
		if i, cand = c.next(src, i, lit, rep0, rep1, base, far); cand < 0 {
			break
		}
		m := lzoMinMatch
		// Extend 8 bytes at a time: the first differing byte is the
		// lowest set byte of the XOR.
		for i+m+8 <= n {
			x := binary.LittleEndian.Uint64(src[i+m:]) ^ binary.LittleEndian.Uint64(src[cand+m:])
			if x != 0 {
				m += bits.TrailingZeros64(x) >> 3
				goto matched
			}
			m += 8
		}
		for i+m < n && src[cand+m] == src[i+m] {
			m++
		}
	matched:
		// A literal run takes at most 3 bytes plus one per 255 of its
		// length; a match at most 3 plus one per 255.
		if op+(i-lit)+(i-lit+m)>>7+6 > limit { // >>7: a cheap bound of /255
			return op, false
		}
		// The common cases inline: up to 3 literals after a match (one
		// 4-byte store; the bound above leaves room), and an M2 match.
		if t := i - lit; t > 0 && t <= 3 && sPos >= 0 {
			o[sPos] |= byte(t)
			binary.LittleEndian.PutUint32(o[op:], binary.LittleEndian.Uint32(src[lit:]))
			op += t
		} else if t > 0 {
			op, _ = lzoLiterals(o, op, src[lit:i], sPos)
		}
		if dist := i - cand; m <= lzoM2MaxLen && dist <= lzoM2MaxOff {
			d := dist - 1
			o[op], o[op+1] = byte((m-1)<<5|(d&7)<<2), byte(d>>3)
			sPos = op
			op += 2
		} else {
			op, sPos = lzoMatch(o, op, m, dist)
		}
		if d := i - cand; d != rep0 {
			rep0, rep1 = d, rep0
		}
		i += m
		lit = i
	}
	if op+(n-lit)+(n-lit)>>7+6 > limit {
		return op, false
	}
	op, _ = lzoLiterals(o, op, src[lit:], sPos)
	o[op], o[op+1], o[op+2] = 0x11, 0, 0 // M4 with distance 16384: end of stream
	op += 3
	return op, true
}

// lzoLiterals writes at o[op:] the literals lits that follow the match
// whose S bits are at o[sPos] (sPos < 0: the start of the stream), and
// returns the new length and -1 (no S bits pending).
func lzoLiterals(o []byte, op int, lits []byte, sPos int) (int, int) {
	t := len(lits)
	switch {
	case t == 0:
		return op, -1
	case sPos < 0 && t <= 238:
		o[op] = byte(17 + t)
		op++
	case sPos >= 0 && t <= 3:
		o[sPos] |= byte(t)
	case t <= 18:
		o[op] = byte(t - 3)
		op++
	default:
		o[op] = 0
		op = lzoExtLen(o, op+1, t-18)
	}
	return op + copy(o[op:], lits), -1
}

// lzoExtLen writes at o[op:] an extended length r ≥ 1: zero bytes worth 255
// each, then the rest.
func lzoExtLen(o []byte, op, r int) int {
	for r > 255 {
		o[op] = 0
		op++
		r -= 255
	}
	o[op] = byte(r)
	return op + 1
}

// lzoMatch writes at o[op:] an M3 or M4 match of length m ≥ 3 at distance
// dist ≥ 1 and returns the new length and the index of the byte that takes
// its S bits. M2 matches (m ≤ 8, dist ≤ 2048) are written inline by
// compressLimit, the only caller, and never reach it.
func lzoMatch(o []byte, op, m, dist int) (int, int) {
	switch {
	case dist <= lzoM3MaxOff:
		d := dist - 1
		if m-2 <= 31 {
			o[op] = byte(0x20 | (m - 2))
			op++
		} else {
			o[op] = 0x20
			op = lzoExtLen(o, op+1, m-2-31)
		}
		o[op], o[op+1] = byte(d<<2), byte(d>>6)
		return op + 2, op
	default:
		d := dist - 16384
		x := byte(0x10 | (d>>14&1)<<3)
		if m-2 <= 7 {
			o[op] = x | byte(m-2)
			op++
		} else {
			o[op] = x
			op = lzoExtLen(o, op+1, m-2-7)
		}
		o[op], o[op+1] = byte(d<<2), byte(d>>6)
		return op + 2, op
	}
}

var (
	errLZOInput  = errors.New("input overrun")
	errLZOOutput = errors.New("output overrun")
	errLZOBehind = errors.New("match distance before the start of the output")
	errLZOTrail  = errors.New("data after the end-of-stream marker")
)

// lzoDecompress decodes the LZO1X stream src into dst and returns the
// number of bytes written. It never reads or writes out of bounds.
func lzoDecompress(dst, src []byte) (int, error) {
	ip, op := 0, 0
	// ext reads an extended length: zero bytes worth 255 each, then the rest.
	ext := func() (int, error) {
		t := 0
		for {
			if ip >= len(src) {
				return 0, errLZOInput
			}
			b := src[ip]
			ip++
			if b != 0 {
				return t + int(b), nil
			}
			t += 255 // bounded by 255*len(src): no overflow
		}
	}
	literals := func(t int) error {
		if ip+t > len(src) {
			return errLZOInput
		}
		if op+t > len(dst) {
			return errLZOOutput
		}
		copy(dst[op:], src[ip:ip+t])
		ip += t
		op += t
		return nil
	}
	if len(src) == 0 {
		return 0, errLZOInput
	}
	state := 0
	if src[0] > 17 {
		t := int(src[0]) - 17
		ip++
		if err := literals(t); err != nil {
			return op, err
		}
		state = min(t, 4)
	}
	for {
		if ip >= len(src) {
			return op, errLZOInput
		}
		inst := int(src[ip])
		ip++
		var length, dist, s int
		switch {
		case inst < 16 && state == 0:
			t := inst
			if t == 0 {
				e, err := ext()
				if err != nil {
					return op, err
				}
				t = 15 + e
			}
			if err := literals(t + 3); err != nil {
				return op, err
			}
			state = 4
			continue
		case inst < 16:
			if ip >= len(src) {
				return op, errLZOInput
			}
			dist = int(src[ip])<<2 + inst>>2&3 + 1
			ip++
			length = 2
			if state == 4 {
				dist += 2048
				length = 3
			}
			s = inst & 3
		case inst < 64:
			var t int
			if inst < 32 {
				t = inst & 7
				if t == 0 {
					e, err := ext()
					if err != nil {
						return op, err
					}
					t = 7 + e
				}
			} else {
				t = inst & 31
				if t == 0 {
					e, err := ext()
					if err != nil {
						return op, err
					}
					t = 31 + e
				}
			}
			length = t + 2
			if ip+2 > len(src) {
				return op, errLZOInput
			}
			le := int(src[ip]) | int(src[ip+1])<<8
			ip += 2
			s = le & 3
			if inst < 32 {
				dist = 16384 + (inst&8)<<11 + le>>2
				if dist == 16384 {
					if ip != len(src) {
						return op, errLZOTrail
					}
					return op, nil
				}
			} else {
				dist = le>>2 + 1
			}
		default:
			if ip >= len(src) {
				return op, errLZOInput
			}
			if inst >= 128 {
				length = 5 + inst>>5&3
			} else {
				length = 3 + inst>>5&1
			}
			dist = int(src[ip])<<3 + inst>>2&7 + 1
			ip++
			s = inst & 3
		}
		if dist > op {
			return op, errLZOBehind
		}
		if op+length > len(dst) {
			return op, errLZOOutput
		}
		for k := 0; k < length; k++ { // may overlap: byte by byte
			dst[op+k] = dst[op-dist+k]
		}
		op += length
		if err := literals(s); err != nil {
			return op, err
		}
		state = s
	}
}
