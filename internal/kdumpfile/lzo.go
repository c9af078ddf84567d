// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"encoding/binary"
	"errors"
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
// LZO1X-1); it emits literal runs, M2, M3 and M4, never M1.

const (
	lzoHashBits = 13
	lzoM2MaxLen = 8
	lzoM2MaxOff = 2048
	lzoM3MaxOff = 16384
	lzoM4MaxOff = 49151
	lzoMinMatch = 4
)

type lzoCompressor struct {
	table [1 << lzoHashBits]int32 // position+1 of a 4-byte sequence, 0: none
}

func newLZOCompressor() *lzoCompressor { return &lzoCompressor{} }

func lzoHash(v uint32) uint32 { return (v * 0x9E3779B1) >> (32 - lzoHashBits) }

// compress appends the LZO1X stream of src to dst.
func (c *lzoCompressor) compress(dst, src []byte) []byte {
	clear(c.table[:])
	n := len(src)
	sPos := -1 // index in dst of the byte holding the last match's S bits
	lit := 0   // start of the pending literals
	i := 0
	// Stop looking for matches near the end: a match needs 4 bytes to hash.
	limit := n - lzoMinMatch
	for i < limit {
		v := binary.LittleEndian.Uint32(src[i:])
		h := lzoHash(v)
		cand := int(c.table[h]) - 1
		c.table[h] = int32(i + 1)
		if cand < 0 || i-cand > lzoM4MaxOff || binary.LittleEndian.Uint32(src[cand:]) != v {
			// Skip faster through data that does not compress.
			i += 1 + (i-lit)>>5
			continue
		}
		m := lzoMinMatch
		for i+m < n && src[cand+m] == src[i+m] {
			m++
		}
		dst, sPos = lzoLiterals(dst, src[lit:i], sPos)
		dst, sPos = lzoMatch(dst, m, i-cand)
		i += m
		lit = i
	}
	dst, _ = lzoLiterals(dst, src[lit:], sPos)
	return append(dst, 0x11, 0, 0) // M4 with distance 16384: end of stream
}

// lzoLiterals appends the literals lits that follow the match whose S bits
// are at dst[sPos] (sPos < 0: the start of the stream).
func lzoLiterals(dst, lits []byte, sPos int) ([]byte, int) {
	t := len(lits)
	switch {
	case t == 0:
	case sPos < 0 && t <= 238:
		dst = append(dst, byte(17+t))
	case sPos >= 0 && t <= 3:
		dst[sPos] |= byte(t)
	case t <= 18:
		dst = append(dst, byte(t-3))
	default:
		dst = append(dst, 0)
		dst = lzoExtLen(dst, t-18)
	}
	return append(dst, lits...), -1
}

// lzoExtLen appends an extended length r ≥ 1: zero bytes worth 255 each,
// then the rest.
func lzoExtLen(dst []byte, r int) []byte {
	for r > 255 {
		dst = append(dst, 0)
		r -= 255
	}
	return append(dst, byte(r))
}

// lzoMatch appends a match of length m ≥ 3 at distance dist ≥ 1 and returns
// the index of the byte that takes its S bits.
func lzoMatch(dst []byte, m, dist int) ([]byte, int) {
	switch {
	case m <= lzoM2MaxLen && dist <= lzoM2MaxOff:
		d := dist - 1
		dst = append(dst, byte((m-1)<<5|(d&7)<<2), byte(d>>3))
		return dst, len(dst) - 2
	case dist <= lzoM3MaxOff:
		d := dist - 1
		if m-2 <= 31 {
			dst = append(dst, byte(0x20|(m-2)))
		} else {
			dst = append(dst, 0x20)
			dst = lzoExtLen(dst, m-2-31)
		}
		dst = append(dst, byte(d<<2), byte(d>>6))
		return dst, len(dst) - 2
	default:
		d := dist - 16384
		op := byte(0x10 | (d>>14&1)<<3)
		if m-2 <= 7 {
			dst = append(dst, op|byte(m-2))
		} else {
			dst = append(dst, op)
			dst = lzoExtLen(dst, m-2-7)
		}
		dst = append(dst, byte(d<<2), byte(d>>6))
		return dst, len(dst) - 2
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
