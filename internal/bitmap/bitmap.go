// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package bitmap is the bitmap of page frame numbers that the dump formats,
// the collector and the mem_map classifier share: one bit per pfn, laid out as
// the kdump-compressed format stores it.
package bitmap

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Bitmap is one bit per page frame number as the kdump format stores it:
// the bit for pfn p is bit p&7 (LSB first) of byte p>>3. Bits at and past
// Len() are always clear.
//
// A Bitmap is not safe for concurrent modification; concurrent Get, Count
// and NextSet calls are fine.
//
// A Bitmap covers pfns [Start(), Len()): a whole machine's (New, Start 0),
// or a window of it (NewRange), whose bytes are the same bytes of the
// whole machine's bitmap.
type Bitmap struct {
	b     []byte
	start uint64 // first pfn covered, a multiple of 8
	n     uint64 // pfns covered: [start, start+n)
}

// ByteLen is the size in bytes of a bitmap of n pfns.
func ByteLen(n uint64) uint64 { return (n + 7) / 8 }

// New returns an all-clear bitmap for pfns [0, maxPFN).
func New(maxPFN uint64) *Bitmap {
	return &Bitmap{b: make([]byte, ByteLen(maxPFN)), n: maxPFN}
}

// NewRange returns an all-clear bitmap for pfns [start, end): a window of
// a machine's bitmap, stored as bytes start/8 to ByteLen(end) of it. start
// must be a multiple of 8.
func NewRange(start, end uint64) *Bitmap {
	if start%8 != 0 || end < start {
		panic(fmt.Sprintf("bitmap: range [%#x, %#x) does not start at a byte", start, end))
	}
	return &Bitmap{b: make([]byte, ByteLen(end-start)), start: start, n: end - start}
}

// Reset makes m an all-clear bitmap for pfns [start, end), reusing its
// memory when it is large enough. start must be a multiple of 8.
func (m *Bitmap) Reset(start, end uint64) {
	if start%8 != 0 || end < start {
		panic(fmt.Sprintf("bitmap: range [%#x, %#x) does not start at a byte", start, end))
	}
	n := ByteLen(end - start)
	if uint64(cap(m.b)) < n {
		m.b = make([]byte, n)
	}
	m.b = m.b[:n]
	clear(m.b)
	m.start, m.n = start, end-start
}

// Start is the first pfn the bitmap covers: 0 but for a window (NewRange).
func (m *Bitmap) Start() uint64 { return m.start }

// FromBytes wraps the first ByteLen(n) bytes of b (which must be that
// long), clearing the bits past n.
func FromBytes(b []byte, n uint64) *Bitmap {
	m := &Bitmap{b: b[:ByteLen(n)], n: n}
	if r := n & 7; r != 0 {
		m.b[len(m.b)-1] &= byte(1)<<r - 1
	}
	return m
}

// Len is the end of the pfns the bitmap covers: max_mapnr for a whole
// machine's bitmap.
func (m *Bitmap) Len() uint64 { return m.start + m.n }

func (m *Bitmap) check(pfn uint64) uint64 {
	if pfn < m.start || pfn-m.start >= m.n {
		panic(fmt.Sprintf("bitmap: pfn %#x out of range [%#x, %#x)", pfn, m.start, m.start+m.n))
	}
	return pfn - m.start
}

// Set sets the bit of pfn, which must be below Len().
func (m *Bitmap) Set(pfn uint64) {
	pfn = m.check(pfn)
	m.b[pfn>>3] |= 1 << (pfn & 7)
}

// Clear clears the bit of pfn, which must be below Len().
func (m *Bitmap) Clear(pfn uint64) {
	pfn = m.check(pfn)
	m.b[pfn>>3] &^= 1 << (pfn & 7)
}

// Get reports whether the bit of pfn is set; pfns outside the bitmap are
// clear.
func (m *Bitmap) Get(pfn uint64) bool {
	if pfn < m.start {
		return false
	}
	pfn -= m.start
	return pfn < m.n && m.b[pfn>>3]&(1<<(pfn&7)) != 0
}

// SetRange sets the bits of pfns [start, end); end must not exceed Len().
func (m *Bitmap) SetRange(start, end uint64) { m.setRange(start, end, true) }

// ClearRange clears the bits of pfns [start, end); end must not exceed Len().
func (m *Bitmap) ClearRange(start, end uint64) { m.setRange(start, end, false) }

func (m *Bitmap) setRange(start, end uint64, v bool) {
	if start >= end {
		return
	}
	if start < m.start || end-m.start > m.n {
		panic(fmt.Sprintf("bitmap: pfn range [%#x, %#x) out of range [%#x, %#x)", start, end, m.start, m.start+m.n))
	}
	start, end = start-m.start, end-m.start
	apply := func(i uint64, mask byte) {
		if v {
			m.b[i] |= mask
		} else {
			m.b[i] &^= mask
		}
	}
	// Head: bits up to the next byte boundary.
	for start < end && start&7 != 0 {
		apply(start>>3, 1<<(start&7))
		start++
	}
	// Whole bytes.
	if whole := (end - start) >> 3; whole > 0 {
		s := m.b[start>>3 : start>>3+whole]
		if v {
			s[0] = 0xff
			for n := 1; n < len(s); n *= 2 {
				copy(s[n:], s[:n])
			}
		} else {
			clear(s)
		}
		start += whole << 3
	}
	// Tail.
	for ; start < end; start++ {
		apply(start>>3, 1<<(start&7))
	}
}

// CountRange is the number of set bits of pfns [start, end), which must be
// within the bitmap.
func (m *Bitmap) CountRange(start, end uint64) uint64 {
	if start >= end {
		return 0
	}
	if start < m.start || end-m.start > m.n {
		panic(fmt.Sprintf("bitmap: pfn range [%#x, %#x) out of range [%#x, %#x)", start, end, m.start, m.start+m.n))
	}
	start, end = start-m.start, end-m.start
	var n uint64
	for ; start < end && start&7 != 0; start++ {
		n += uint64(m.b[start>>3] >> (start & 7) & 1)
	}
	if whole := (end - start) >> 3; whole > 0 {
		n += OnesCount(m.b[start>>3 : start>>3+whole])
		start += whole << 3
	}
	for ; start < end; start++ {
		n += uint64(m.b[start>>3] >> (start & 7) & 1)
	}
	return n
}

// Count is the number of set bits.
func (m *Bitmap) Count() uint64 { return OnesCount(m.b) }

// OnesCount is the number of set bits in b, a part of a bitmap's Bytes.
func OnesCount(b []byte) uint64 {
	var n uint64
	for len(b) >= 8 {
		n += uint64(bits.OnesCount64(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	for _, c := range b {
		n += uint64(bits.OnesCount8(c))
	}
	return n
}

// NextSet returns the first set pfn at or after from; ok is false if there
// is none.
func (m *Bitmap) NextSet(from uint64) (pfn uint64, ok bool) {
	from = max(from, m.start) - m.start
	pfn, ok = m.nextSet(from)
	return pfn + m.start, ok
}

// NextClear returns the first clear pfn at or after from below Len(), or
// Len() if there is none.
func (m *Bitmap) NextClear(from uint64) uint64 {
	from = max(from, m.start) - m.start
	if from >= m.n {
		return m.start + m.n
	}
	i := from >> 3
	if c := ^m.b[i] >> (from & 7); c != 0 {
		return min(m.start+from+uint64(bits.TrailingZeros8(c)), m.start+m.n)
	}
	i++
	for ; i < uint64(len(m.b)) && i&7 != 0; i++ {
		if c := ^m.b[i]; c != 0 {
			return min(m.start+i<<3+uint64(bits.TrailingZeros8(c)), m.start+m.n)
		}
	}
	for ; i+8 <= uint64(len(m.b)); i += 8 {
		if w := ^binary.LittleEndian.Uint64(m.b[i:]); w != 0 {
			return min(m.start+i<<3+uint64(bits.TrailingZeros64(w)), m.start+m.n)
		}
	}
	for ; i < uint64(len(m.b)); i++ {
		if c := ^m.b[i]; c != 0 {
			return min(m.start+i<<3+uint64(bits.TrailingZeros8(c)), m.start+m.n)
		}
	}
	return m.start + m.n
}

func (m *Bitmap) nextSet(from uint64) (pfn uint64, ok bool) {
	if from >= m.n {
		return 0, false
	}
	i := from >> 3
	// The byte holding from, without the bits below it.
	if c := m.b[i] >> (from & 7); c != 0 {
		return from + uint64(bits.TrailingZeros8(c)), true
	}
	i++
	// Byte-wise up to an 8-byte boundary, then word-wise.
	for ; i < uint64(len(m.b)) && i&7 != 0; i++ {
		if c := m.b[i]; c != 0 {
			return i<<3 + uint64(bits.TrailingZeros8(c)), true
		}
	}
	for ; i+8 <= uint64(len(m.b)); i += 8 {
		if w := binary.LittleEndian.Uint64(m.b[i:]); w != 0 {
			return i<<3 + uint64(bits.TrailingZeros64(w)), true
		}
	}
	for ; i < uint64(len(m.b)); i++ {
		if c := m.b[i]; c != 0 {
			return i<<3 + uint64(bits.TrailingZeros8(c)), true
		}
	}
	return 0, false
}

// Bytes is the bitmap as stored in a dump, divUp(Len()-Start(), 8) bytes
// (those of pfns from Start() on). It is the
// bitmap's own memory, not a copy.
func (m *Bitmap) Bytes() []byte { return m.b }

// Clone returns an independent copy.
func (m *Bitmap) Clone() *Bitmap {
	return &Bitmap{b: append([]byte(nil), m.b...), start: m.start, n: m.n}
}

// SubsetOf reports whether every bit of m is set in o (same Start and Len).
func (m *Bitmap) SubsetOf(o *Bitmap) (bad uint64, ok bool) {
	for i, c := range m.b {
		if d := c &^ o.b[i]; d != 0 {
			return m.start + uint64(i)<<3 + uint64(bits.TrailingZeros8(d)), false
		}
	}
	return 0, true
}
