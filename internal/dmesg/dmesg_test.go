// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dmesg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// flatMem is physical memory [0, len).
type flatMem []byte

func (m flatMem) ReadPhys(p []byte, paddr uint64) error {
	if paddr > uint64(len(m)) || uint64(len(p)) > uint64(len(m))-paddr {
		return fmt.Errorf("flatMem: %d bytes at %#x: %w", len(p), paddr, dumpmem.ErrNotInDump)
	}
	copy(p, m[paddr:])
	return nil
}

func (m flatMem) put64(a, v uint64)        { binary.LittleEndian.PutUint64(m[a:], v) }
func (m flatMem) put32(a uint64, v uint32) { binary.LittleEndian.PutUint32(m[a:], v) }
func (m flatMem) put16(a uint64, v uint16) { binary.LittleEndian.PutUint16(m[a:], v) }

// va is the kernel-image virtual address of physical address pa (phys_base 0).
func va(pa uint64) uint64 { return dumpmem.StartKernelMap + pa }

// The 6.1 lockless layout (research 3.1).
const locklessInfo = `SYMBOL(prb)=ffffffff80000100
SIZE(printk_ringbuffer)=88
OFFSET(printk_ringbuffer.desc_ring)=0
OFFSET(printk_ringbuffer.text_data_ring)=48
OFFSET(prb_desc_ring.count_bits)=0
OFFSET(prb_desc_ring.descs)=8
OFFSET(prb_desc_ring.infos)=16
OFFSET(prb_desc_ring.head_id)=24
OFFSET(prb_desc_ring.tail_id)=32
OFFSET(atomic_long_t.counter)=0
SIZE(prb_desc)=24
OFFSET(prb_desc.state_var)=0
OFFSET(prb_desc.text_blk_lpos)=8
OFFSET(prb_data_blk_lpos.begin)=0
OFFSET(prb_data_blk_lpos.next)=8
SIZE(printk_info)=88
OFFSET(printk_info.seq)=0
OFFSET(printk_info.ts_nsec)=8
OFFSET(printk_info.text_len)=16
OFFSET(prb_data_ring.size_bits)=0
OFFSET(prb_data_ring.data)=8
`

// Physical layout of the synthetic ring buffer.
const (
	prbVar   = 0x100
	rbAddr   = 0x200
	descsAt  = 0x1000
	infosAt  = 0x2000
	dataAt   = 0x3000
	cbits    = 3 // 8 descriptors
	sbits    = 8 // 256 text bytes
	memBytes = 0x4000
)

type rec struct {
	ts       uint64
	text     string
	state    uint64 // 0 means finalized (2)
	reserved bool   // state 0, desc_reserved
	textLen  int    // printk_info.text_len if >= 0 and set; else len(text)
	setLen   bool
	dataless bool
	atEnd    bool // place the block to end exactly at the ring end (2025 kernels)
}

// buildLockless lays out recs as consecutive ids from firstID, placing
// blocks from lpos startLpos by the kernel's rules.
func buildLockless(firstID, startLpos uint64, recs []rec) *dumpmem.Kernel {
	m := make(flatMem, memBytes)
	m.put64(prbVar, va(rbAddr))
	m.put32(rbAddr+0, cbits)
	m.put64(rbAddr+8, va(descsAt))
	m.put64(rbAddr+16, va(infosAt))
	m.put32(rbAddr+48, sbits)
	m.put64(rbAddr+48+8, va(dataAt))
	const count, dsize = 1 << cbits, 1 << sbits
	lpos := startLpos
	id := firstID
	for _, r := range recs {
		d := descsAt + (id%count)*24
		st := r.state
		if st == 0 {
			st = 2
		}
		if r.reserved {
			st = 0
		}
		m.put64(d, st<<62|id)
		in := infosAt + (id%count)*88
		m.put64(in+8, r.ts)
		tl := len(r.text)
		if r.setLen {
			tl = r.textLen
		}
		m.put16(in+16, uint16(tl))
		if r.dataless {
			m.put64(d+8, 1) // FAILED_LPOS
			m.put64(d+16, 1)
			id++
			continue
		}
		size := (8 + uint64(len(r.text)) + 7) &^ 7
		begin := lpos
		next := begin + size
		if r.atEnd {
			// next lands exactly on the ring end.
		} else if begin/dsize != next/dsize {
			next = (next/dsize)*dsize + size
		}
		start := begin % dsize
		if begin/dsize != (next-1)/dsize {
			start = 0
		}
		m.put64(dataAt+start, id)
		copy(m[dataAt+start+8:], r.text)
		m.put64(d+8, begin)
		m.put64(d+16, next)
		lpos = next
		id++
	}
	m.put64(rbAddr+32, firstID) // tail
	m.put64(rbAddr+24, id-1)    // head
	return &dumpmem.Kernel{Mem: m, Info: vmcore.ParseInfo([]byte(locklessInfo))}
}

func TestReadLockless(t *testing.T) {
	for _, tc := range []struct {
		name      string
		firstID   uint64
		startLpos uint64
		recs      []rec
		want      string
	}{
		{
			name: "simple",
			recs: []rec{{ts: 0, text: "Linux version 6.1"}, {ts: 1234567891, text: "second"}},
			want: "[    0.000000] Linux version 6.1\n[    1.234567] second\n",
		},
		{
			name: "continuation lines and escapes",
			recs: []rec{{ts: 123456789012345, text: "a\nb\tc\x01\x7f\xe9\x00"}},
			want: "[123456.789012] a\n                b\tc\\x01\\x7f\\xffffffe9\\x00\n",
		},
		{
			name: "skipped states and data-less records",
			recs: []rec{{text: "one"}, {text: "reserved", reserved: true}, {text: "reusable", state: 3}, {text: "gone", dataless: true}, {text: "committed", state: 1}},
			want: "[    0.000000] one\n[    0.000000] committed\n",
		},
		{
			name: "text_len shorter and longer than the block",
			recs: []rec{{text: "abcdef", textLen: 3, setLen: true}, {text: "xy", textLen: 100, setLen: true}},
			want: "[    0.000000] abc\n[    0.000000] xy" + `\x00\x00\x00\x00\x00\x00` + "\n",
		},
		{
			name:      "wrapped block",
			firstID:   (1 << 62) - 2, // ids wrap around DESC_ID_MASK too
			startLpos: 3*256 + 200,
			recs:      []rec{{ts: 5e9, text: "0123456789012345678901234567890123456789"}, {ts: 6e9, text: "next"}},
			want:      "[    5.000000] 0123456789012345678901234567890123456789\n[    6.000000] next\n",
		},
		{
			name:      "block ending at the ring end",
			startLpos: 256 + 224,
			recs:      []rec{{text: "0123456789abcdefghijklm", atEnd: true}, {text: "after"}},
			want:      "[    0.000000] 0123456789abcdefghijklm\n[    0.000000] after\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := buildLockless(tc.firstID, tc.startLpos, tc.recs)
			got, err := Read(k)
			if err != nil {
				t.Fatalf("Read = %v", err)
			}
			if d := cmp.Diff(tc.want, string(got)); d != "" {
				t.Errorf("Read (-want +got):\n%s", d)
			}
		})
	}
}

func TestReadLocklessCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(m flatMem)
	}{
		{"head far from tail", func(m flatMem) { m.put64(rbAddr+24, 1000) }},
		{"huge text ring", func(m flatMem) { m.put32(rbAddr+48, 40) }},
		{"descs outside the dump", func(m flatMem) { m.put64(rbAddr+8, va(memBytes*4)) }},
		{"prb outside the dump", func(m flatMem) { m.put64(prbVar, va(memBytes*8)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := buildLockless(0, 0, []rec{{text: "x"}})
			tc.patch(k.Mem.(flatMem))
			if got, err := Read(k); err == nil {
				t.Errorf("Read = %q, nil; want an error", got)
			}
		})
	}
}

const legacyInfo = `SYMBOL(log_buf)=ffffffff80000100
SYMBOL(log_buf_len)=ffffffff80000108
SYMBOL(log_first_idx)=ffffffff80000110
SYMBOL(log_next_idx)=ffffffff80000118
SIZE(printk_log)=16
OFFSET(printk_log.ts_nsec)=0
OFFSET(printk_log.len)=8
OFFSET(printk_log.text_len)=10
OFFSET(printk_log.dict_len)=12
`

type legacyRec struct {
	at   uint64 // index in log_buf
	len  uint16 // 0: a wrap marker
	ts   uint64
	text string
}

func buildLegacy(bufLen, first, next uint32, recs []legacyRec) *dumpmem.Kernel {
	const bufAt = 0x1000
	m := make(flatMem, memBytes)
	m.put64(0x100, va(bufAt))
	m.put32(0x108, bufLen)
	m.put32(0x110, first)
	m.put32(0x118, next)
	for _, r := range recs {
		a := bufAt + r.at
		m.put64(a, r.ts)
		m.put16(a+8, r.len)
		m.put16(a+10, uint16(len(r.text)))
		m.put16(a+12, 4) // a dict, which makedumpfile does not print
		copy(m[a+16:], r.text+"K=V\x00")
	}
	return &dumpmem.Kernel{Mem: m, Info: vmcore.ParseInfo([]byte(legacyInfo))}
}

func TestReadLegacy(t *testing.T) {
	for _, tc := range []struct {
		name               string
		bufLen, first, nxt uint32
		recs               []legacyRec
		want               string
		err                error
	}{
		{
			name: "straight", bufLen: 256, first: 0, nxt: 64,
			recs: []legacyRec{{at: 0, len: 32, ts: 1e9, text: "hello"}, {at: 32, len: 32, ts: 2e9 + 5000, text: "a\nb"}},
			want: "[    1.000000] hello\n[    2.000005] a\n               b\n",
		},
		{
			name: "wrapped", bufLen: 256, first: 192, nxt: 32,
			recs: []legacyRec{{at: 192, len: 32, text: "old"}, {at: 224, len: 0}, {at: 0, len: 32, text: "new"}},
			want: "[    0.000000] old\n[    0.000000] new\n",
		},
		{
			name: "cycle", bufLen: 256, first: 0, nxt: 100,
			recs: []legacyRec{{at: 0, len: 32, text: "a"}, {at: 32, len: 0}},
			err:  ErrCorrupt,
		},
		{
			name: "record past the end", bufLen: 256, first: 0, nxt: 100,
			recs: []legacyRec{{at: 0, len: 300, text: "a"}},
			err:  ErrCorrupt,
		},
		{
			name: "index out of range", bufLen: 256, first: 300, nxt: 0,
			err: ErrCorrupt,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(buildLegacy(tc.bufLen, tc.first, tc.nxt, tc.recs))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Read = %q, %v; want error %v", got, err, tc.err)
			}
			if d := cmp.Diff(tc.want, string(got)); err == nil && d != "" {
				t.Errorf("Read (-want +got):\n%s", d)
			}
		})
	}
}

func TestReadNoLog(t *testing.T) {
	k := &dumpmem.Kernel{Mem: make(flatMem, 16), Info: vmcore.ParseInfo([]byte("OSRELEASE=3.2\n"))}
	if _, err := Read(k); err == nil {
		t.Error("Read(no log symbols) = nil error")
	}
}

// FuzzRead runs Read over corrupted ring buffers and legacy logs: it must
// return, without a panic, a log or an error.
func FuzzRead(f *testing.F) {
	lk := buildLockless(0, 0, []rec{{text: "hello"}, {text: "a\nb"}})
	f.Add(false, []byte(lk.Mem.(flatMem)))
	lg := buildLegacy(256, 192, 32, []legacyRec{{at: 192, len: 32, text: "old"}, {at: 224, len: 0}, {at: 0, len: 32, text: "new"}})
	f.Add(true, []byte(lg.Mem.(flatMem)))
	f.Fuzz(func(t *testing.T, legacy bool, mem []byte) {
		info := locklessInfo
		if legacy {
			info = legacyInfo
		}
		k := &dumpmem.Kernel{Mem: flatMem(mem), Info: vmcore.ParseInfo([]byte(info))}
		Read(k)
	})
}
