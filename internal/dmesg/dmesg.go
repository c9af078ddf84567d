// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package dmesg extracts the kernel log from a dump, in the format of
// makedumpfile --dump-dmesg.
//
// Two layouts are read: the lockless printk ring buffer of Linux 5.10 and
// later (SYMBOL(prb)), and the structured log_buf of 3.5 to 5.9
// (SYMBOL(log_buf)). Both are located through VMCOREINFO alone.
package dmesg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// ErrCorrupt is wrapped by the errors for a log whose structures are
// inconsistent.
var ErrCorrupt = errors.New("corrupt kernel log")

// Limits on what is read, so a corrupt dump cannot make Read allocate or
// loop without bound.
const (
	maxRingBits  = 28      // text ring of at most 256 MiB
	maxDescBits  = 24      // at most 16M descriptors
	maxTableSize = 1 << 28 // bytes of descriptors or infos
	maxStruct    = 1 << 16 // bytes of one described structure
	maxLegacyLen = 1 << 28 // legacy log_buf_len
)

// Read returns the kernel log of the dump k reads, formatted as
// makedumpfile 1.7.2 --dump-dmesg writes it: one "[%5d.%06d] text" line
// per record, continuation lines indented to the text, unprintable bytes
// as \xNN.
func Read(k *dumpmem.Kernel) ([]byte, error) {
	if k.Info == nil {
		return nil, errors.New("dmesg: the dump has no VMCOREINFO")
	}
	if _, ok := k.Info.Symbol("prb"); ok {
		return readLockless(k)
	}
	if _, ok := k.Info.Symbol("log_buf"); ok {
		return readLegacy(k)
	}
	return nil, errors.New("dmesg: VMCOREINFO has neither SYMBOL(prb) nor SYMBOL(log_buf) (kernels before 3.5 are not supported)")
}

// layout looks up VMCOREINFO OFFSET/SIZE entries, remembering the first
// one missing.
type layout struct {
	info *vmcore.Info
	err  error
}

func (l *layout) get(kind, name string) uint64 {
	var v int64
	var ok bool
	switch kind {
	case "OFFSET":
		v, ok = l.info.Offset(name)
	case "SIZE":
		v, ok = l.info.SizeOf(name)
	}
	if !ok || v < 0 || v > maxStruct {
		if l.err == nil {
			if ok {
				l.err = fmt.Errorf("dmesg: VMCOREINFO %s(%s)=%d out of range", kind, name, v)
			} else {
				l.err = fmt.Errorf("dmesg: VMCOREINFO lacks %s(%s)", kind, name)
			}
		}
		return 0
	}
	return uint64(v)
}

func (l *layout) off(name string) uint64  { return l.get("OFFSET", name) }
func (l *layout) size(name string) uint64 { return l.get("SIZE", name) }

// field reads a little-endian integer of n bytes at off in b, checking bounds.
func field(b []byte, off, n uint64, what string) (uint64, error) {
	if off > uint64(len(b)) || n > uint64(len(b))-off {
		return 0, fmt.Errorf("dmesg: %s: field at %d+%d outside its %d-byte structure: %w", what, off, n, len(b), ErrCorrupt)
	}
	switch n {
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[off:])), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[off:])), nil
	}
	return binary.LittleEndian.Uint64(b[off:]), nil
}

func readVirt(k *dumpmem.Kernel, va, n uint64, what string) ([]byte, error) {
	// Check the last byte first, so a bogus size fails before allocating.
	var last [1]byte
	if n > 0 {
		if err := k.ReadVirt(last[:], va+n-1); err != nil {
			return nil, fmt.Errorf("dmesg: reading %s (%d bytes at %#x): %w", what, n, va, err)
		}
	}
	b := make([]byte, n)
	if err := k.ReadVirt(b, va); err != nil {
		return nil, fmt.Errorf("dmesg: reading %s (%d bytes at %#x): %w", what, n, va, err)
	}
	return b, nil
}

// Descriptor state_var layout (kernel/printk/printk_ringbuffer.h).
const (
	descFlagsShift = 62
	descIDMask     = ^uint64(3 << descFlagsShift)
	descCommitted  = 1
	descFinalized  = 2
	idSize         = 8 // the unsigned long id heading each data block
)

func readLockless(k *dumpmem.Kernel) ([]byte, error) {
	l := &layout{info: k.Info}
	prbSym, _ := k.Info.Symbol("prb")
	var (
		rbSize      = l.size("printk_ringbuffer")
		descRingOff = l.off("printk_ringbuffer.desc_ring")
		dataRingOff = l.off("printk_ringbuffer.text_data_ring")
		countBits   = l.off("prb_desc_ring.count_bits")
		descsOff    = l.off("prb_desc_ring.descs")
		infosOff    = l.off("prb_desc_ring.infos")
		headOff     = l.off("prb_desc_ring.head_id")
		tailOff     = l.off("prb_desc_ring.tail_id")
		counterOff  = l.off("atomic_long_t.counter")
		descSize    = l.size("prb_desc")
		stateOff    = l.off("prb_desc.state_var")
		lposOff     = l.off("prb_desc.text_blk_lpos")
		beginOff    = l.off("prb_data_blk_lpos.begin")
		nextOff     = l.off("prb_data_blk_lpos.next")
		infoSize    = l.size("printk_info")
		tsOff       = l.off("printk_info.ts_nsec")
		textLenOff  = l.off("printk_info.text_len")
		sizeBitsOff = l.off("prb_data_ring.size_bits")
		dataOff     = l.off("prb_data_ring.data")
	)
	if l.err != nil {
		return nil, l.err
	}
	rbAddr, err := k.ReadU64(prbSym)
	if err != nil {
		return nil, fmt.Errorf("dmesg: reading prb at %#x: %w", prbSym, err)
	}
	rb, err := readVirt(k, rbAddr, rbSize, "the printk_ringbuffer")
	if err != nil {
		return nil, err
	}
	f := func(off, n uint64, what string) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = field(rb, off, n, what)
		return v
	}
	cbits := f(descRingOff+countBits, 4, "prb_desc_ring.count_bits")
	descsVA := f(descRingOff+descsOff, 8, "prb_desc_ring.descs")
	infosVA := f(descRingOff+infosOff, 8, "prb_desc_ring.infos")
	head := f(descRingOff+headOff+counterOff, 8, "prb_desc_ring.head_id")
	tail := f(descRingOff+tailOff+counterOff, 8, "prb_desc_ring.tail_id")
	sbits := f(dataRingOff+sizeBitsOff, 4, "prb_data_ring.size_bits")
	dataVA := f(dataRingOff+dataOff, 8, "prb_data_ring.data")
	if err != nil {
		return nil, err
	}
	if cbits > maxDescBits || sbits > maxRingBits || sbits < 3 {
		return nil, fmt.Errorf("dmesg: ring buffer with 2^%d descriptors and 2^%d text bytes: %w", cbits, sbits, ErrCorrupt)
	}
	count, dsize := uint64(1)<<cbits, uint64(1)<<sbits
	if count*descSize > maxTableSize || count*infoSize > maxTableSize {
		return nil, fmt.Errorf("dmesg: %d descriptors of %d bytes and infos of %d bytes: %w", count, descSize, infoSize, ErrCorrupt)
	}
	if descSize < lposOff+max(beginOff, nextOff)+8 || descSize < stateOff+counterOff+8 || infoSize < tsOff+8 || infoSize < textLenOff+2 {
		return nil, fmt.Errorf("dmesg: prb_desc (%d bytes) or printk_info (%d bytes) too small for their fields: %w", descSize, infoSize, ErrCorrupt)
	}
	descs, err := readVirt(k, descsVA, count*descSize, "prb_desc_ring.descs")
	if err != nil {
		return nil, err
	}
	infos, err := readVirt(k, infosVA, count*infoSize, "prb_desc_ring.infos")
	if err != nil {
		return nil, err
	}
	data, err := readVirt(k, dataVA, dsize, "prb_data_ring.data")
	if err != nil {
		return nil, err
	}
	head &= descIDMask
	tail &= descIDMask
	if n := (head - tail) & descIDMask; n >= count {
		return nil, fmt.Errorf("dmesg: tail id %#x and head id %#x are %d apart, ring has %d descriptors: %w", tail, head, n, count, ErrCorrupt)
	}

	var out []byte
	record := func(id uint64) {
		d := descs[(id%count)*descSize:][:descSize]
		sv := binary.LittleEndian.Uint64(d[stateOff+counterOff:])
		if sv&descIDMask != id {
			return
		}
		if st := sv >> descFlagsShift; st != descCommitted && st != descFinalized {
			return
		}
		begin := binary.LittleEndian.Uint64(d[lposOff+beginOff:])
		next := binary.LittleEndian.Uint64(d[lposOff+nextOff:])
		text, ok := blockText(data, sbits, begin, next)
		if !ok {
			return
		}
		in := infos[(id%count)*infoSize:][:infoSize]
		if n := int(binary.LittleEndian.Uint16(in[textLenOff:])); n < len(text) {
			text = text[:n]
		}
		out = appendRecord(out, binary.LittleEndian.Uint64(in[tsOff:]), text)
	}
	id := tail
	for id != head {
		record(id)
		id = (id + 1) & descIDMask
	}
	record(head)
	return out, nil
}

// blockText returns the text of the data block [begin, next) of the text
// ring (2^sbits bytes), after its id, by the kernel's rule (get_data()):
// a block that would cross the end of the ring is stored at its start. A
// block ending exactly at the end of the ring (kernels since 2025) is
// regular. ok is false for data-less or invalid blocks.
func blockText(data []byte, sbits, begin, next uint64) (text []byte, ok bool) {
	dsize := uint64(1) << sbits
	if begin&1 != 0 || next&1 != 0 || begin == next || next-begin > dsize {
		return nil, false
	}
	var start, end uint64
	if begin>>sbits == (next-1)>>sbits {
		start, end = begin&(dsize-1), begin&(dsize-1)+(next-begin)
	} else {
		start, end = 0, next&(dsize-1)
	}
	if end < start+idSize || end > dsize {
		return nil, false
	}
	return data[start+idSize : end], true
}

// appendRecord appends one record as makedumpfile formats it.
func appendRecord(out []byte, tsNsec uint64, text []byte) []byte {
	start := len(out)
	out = append(out, '[')
	secs := strconv.FormatUint(tsNsec/1e9, 10)
	for i := len(secs); i < 5; i++ {
		out = append(out, ' ')
	}
	out = append(out, secs...)
	out = append(out, '.')
	us := strconv.FormatUint(tsNsec%1e9/1000, 10)
	for i := len(us); i < 6; i++ {
		out = append(out, '0')
	}
	out = append(out, us...)
	out = append(out, "] "...)
	indent := len(out) - start
	for _, c := range text {
		switch {
		case c == '\n':
			out = append(out, '\n')
			for range indent {
				out = append(out, ' ')
			}
		case c >= 0x20 && c < 0x7f, c >= '\t' && c <= '\r':
			out = append(out, c)
		case c >= 0x80:
			// makedumpfile passes a (signed) char to "\\x%02x".
			out = fmt.Appendf(out, "\\x%02x", uint32(int32(int8(c))))
		default:
			out = fmt.Appendf(out, "\\x%02x", c)
		}
	}
	return append(out, '\n')
}

// readLegacy reads the structured log_buf of Linux 3.5 to 5.9: records of
// struct printk_log (struct log before 3.11) followed by their text, from
// log_first_idx to log_next_idx; a record with len 0 marks a wrap to 0.
func readLegacy(k *dumpmem.Kernel) ([]byte, error) {
	l := &layout{info: k.Info}
	st := "printk_log"
	if _, ok := k.Info.SizeOf(st); !ok {
		if _, ok := k.Info.SizeOf("log"); ok {
			st = "log"
		}
	}
	var (
		hdr        = l.size(st)
		tsOff      = l.off(st + ".ts_nsec")
		lenOff     = l.off(st + ".len")
		textLenOff = l.off(st + ".text_len")
	)
	if l.err != nil {
		return nil, l.err
	}
	if hdr < tsOff+8 || hdr < lenOff+2 || hdr < textLenOff+2 {
		return nil, fmt.Errorf("dmesg: SIZE(%s)=%d too small for its fields: %w", st, hdr, ErrCorrupt)
	}
	sym := func(name string) uint64 {
		v, ok := k.Info.Symbol(name)
		if !ok && l.err == nil {
			l.err = fmt.Errorf("dmesg: VMCOREINFO lacks SYMBOL(%s)", name)
		}
		return v
	}
	logBufSym, lenSym, firstSym, nextSym := sym("log_buf"), sym("log_buf_len"), sym("log_first_idx"), sym("log_next_idx")
	if l.err != nil {
		return nil, l.err
	}
	bufVA, err := k.ReadU64(logBufSym)
	if err != nil {
		return nil, fmt.Errorf("dmesg: reading log_buf at %#x: %w", logBufSym, err)
	}
	var v [3]uint32
	for i, a := range []uint64{lenSym, firstSym, nextSym} {
		if v[i], err = k.ReadU32(a); err != nil {
			return nil, fmt.Errorf("dmesg: reading the log indexes at %#x: %w", a, err)
		}
	}
	bufLen, first, next := uint64(v[0]), uint64(v[1]), uint64(v[2])
	if bufLen == 0 || bufLen > maxLegacyLen || first >= bufLen || next >= bufLen {
		return nil, fmt.Errorf("dmesg: log_buf_len %d, log_first_idx %d, log_next_idx %d: %w", bufLen, first, next, ErrCorrupt)
	}
	buf, err := readVirt(k, bufVA, bufLen, "log_buf")
	if err != nil {
		return nil, err
	}
	var out []byte
	idx, wrapped := first, false
	// Every record but the wrap marker is at least hdr bytes long.
	for steps := uint64(0); idx != next; steps++ {
		if steps > bufLen/hdr+2 {
			return nil, fmt.Errorf("dmesg: log_buf: more records than fit (a cycle?): %w", ErrCorrupt)
		}
		if idx+hdr > bufLen {
			return nil, fmt.Errorf("dmesg: log_buf: record at %d runs past the %d-byte buffer: %w", idx, bufLen, ErrCorrupt)
		}
		rl := uint64(binary.LittleEndian.Uint16(buf[idx+lenOff:]))
		if rl == 0 {
			if wrapped || idx == 0 {
				return nil, fmt.Errorf("dmesg: log_buf: second wrap marker at %d: %w", idx, ErrCorrupt)
			}
			idx, wrapped = 0, true
			continue
		}
		if rl < hdr || idx+rl > bufLen {
			return nil, fmt.Errorf("dmesg: log_buf: record at %d has len %d (header %d, buffer %d): %w", idx, rl, hdr, bufLen, ErrCorrupt)
		}
		tl := min(uint64(binary.LittleEndian.Uint16(buf[idx+textLenOff:])), rl-hdr)
		out = appendRecord(out, binary.LittleEndian.Uint64(buf[idx+tsOff:]), buf[idx+hdr:idx+hdr+tl])
		idx += rl
		if idx >= bufLen {
			idx = 0 // cannot happen in the kernel's layout; stay in bounds
			if wrapped {
				return nil, fmt.Errorf("dmesg: log_buf: second wrap at the end of the buffer: %w", ErrCorrupt)
			}
			wrapped = true
		}
	}
	return out, nil
}
