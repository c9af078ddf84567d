// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kdumpfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// DefaultBufferSize is the writer's page data cache: data goes to the sink
// in writes of this size. The descriptor cache is 64 KiB, as in makedumpfile.
const DefaultBufferSize = 1 << 20

// descCacheSize is the descriptor cache: 2730 descriptors, just under 64 KiB.
const descCacheSize = 2730 * descSize

// Params describe the dump a Writer writes. What they say of the crashed
// kernel its caller takes from the core (vmcore.Core and its VMCOREINFO,
// parsed there): the writer derives nothing from the notes it copies.
// Zero-valued fields take the defaults documented with each.
type Params struct {
	// PageSize is the page and block size (VMCOREINFO PAGESIZE); 0 means
	// 4096.
	PageSize int
	// MaxPFN is max_mapnr, the highest pfn+1 of the PT_LOADs (their ends
	// rounded up to a page); 0 means the bitmaps' Len.
	MaxPFN uint64
	// Notes are the bytes of the core's PT_NOTE segment, copied verbatim
	// (per-CPU NT_PRSTATUS notes, VMCOREINFO, ...); the sub-header points
	// at their VMCOREINFO note.
	Notes []byte
	// VMCoreInfo is VMCOREINFO text for a core whose Notes have no
	// VMCOREINFO note: one holding it is appended to the copied notes.
	VMCoreInfo []byte
	// PhysBase is the sub-header's phys_base (VMCOREINFO NUMBER(phys_base)
	// on x86_64), which crash uses for __pa() of kernel-image addresses.
	PhysBase uint64
	// DumpLevel is the makedumpfile -d value the dumpable bitmap was made
	// with. With bit 1 (zero pages) set, all-zero pages share one descriptor.
	DumpLevel int
	// Codec is the compression the header announces; "" means CodecNone.
	Codec Codec
	// CrashTime is the header timestamp (tv_sec; tv_usec is always 0),
	// VMCOREINFO CRASHTIME; the zero time writes 0.
	CrashTime time.Time
	// NrCPUs is the header's nr_cpus: the core's NT_PRSTATUS notes.
	NrCPUs int
	// Utsname is the crashed kernel's utsname (Release: VMCOREINFO
	// OSRELEASE); an empty Sysname means "Linux" and an empty Machine
	// "x86_64".
	Utsname Utsname
	// BufferSize is the size of the page data cache; 0 means
	// DefaultBufferSize. Memory use is about BufferSize + 64 KiB.
	BufferSize int
	// Sync, if set, makes what was written durable (fsync of the file):
	// Close calls it after the last page data and descriptors and before
	// it clears the header's incomplete mark, and again after, so that a
	// header saying "complete" is never on disk before the data is.
	Sync func() error
}

// CoreParams are the Params a dump of c takes from it: its notes, its CPUs
// (NT_PRSTATUS notes), and from its VMCOREINFO the page size, the release,
// the crash time and phys_base. The caller adds the rest.
func CoreParams(c *vmcore.Core) Params {
	p := Params{Notes: c.NoteBytes, NrCPUs: c.CPUs()}
	if in := c.Info; in != nil {
		p.PageSize = int(in.PageSize())
		p.Utsname.Release = in.OSRelease()
		p.CrashTime, _ = in.CrashTime()
		if pb, ok := in.Number("phys_base"); ok {
			p.PhysBase = uint64(pb)
		}
	}
	return p
}

// Writer writes a kdump-compressed file: NewWriter (or NewWindowWriter)
// writes the header, sub-header and notes; WriteBitmaps the bitmaps of a
// window of pfns, WritePage the page descriptors and data of that window's
// pages, then the next window; Close flushes. Until Close has written
// everything, the header in the sink says StatusIncomplete: a writer that
// dies (OOM, power cut, a killed process) leaves a file that readers and
// crash report as incomplete. It keeps the current window's dumpable
// bitmap and two caches in memory, nothing that grows with the dump or
// the machine. Its methods may be called from several goroutines, but
// windows and pages must arrive in ascending pfn order.
type Writer struct {
	mu     sync.Mutex
	w      io.WriterAt
	hdr    Header
	lay    layout
	maxPFN uint64
	// win is the current window's dumpable bitmap (nil before the first);
	// bitmapEnd is the end of the pfns whose bitmap bytes were written.
	win       *bitmap.Bitmap
	bitmapEnd uint64
	// winEnd is the end of the current window of pages (win); winFirst the
	// pages written before it, winNum its dumpable pages.
	winEnd, winFirst, winNum uint64
	// provEnd is the end of the pfns WriteProvisional wrote.
	provEnd  uint64
	pageSize int
	zeroDesc *PageDesc // the shared zero page's descriptor (dump level bit 1)
	zeroData []byte    // a compressed zero page, without dump level bit 1
	zeroFlag uint32
	codec    Codec

	num     uint64 // descriptors to write: dumpable pages
	numSet  bool   // SetDumpable was called
	written uint64 // descriptors produced so far
	next    uint64 // pfns below next were written

	descBuf   []byte
	descStart int64 // file offset of descBuf[0]
	dataBuf   []byte
	dataStart int64 // file offset of dataBuf[0]
	dataCap   int
	// durable is the end of the page data known to be in the sink: all
	// data below it was written.
	durable int64

	err   error // first write error; the file can then only be aborted
	state int
	sync  func() error
}

const (
	stateOpen = iota
	stateClosed
	stateAborted
)

// ErrOrder is wrapped by WritePage's error for a pfn that is not the next
// set bit of the dumpable bitmap.
var ErrOrder = errors.New("page out of order")

// NewWriter lays out a dump of the pages set in dumpable (a subset of
// present, the RAM pages) and writes everything before the page
// descriptors: a NewWindowWriter with one window, the whole machine. The
// sink is not closed by the writer.
func NewWriter(w io.WriterAt, p Params, present, dumpable *bitmap.Bitmap) (*Writer, error) {
	if present == nil || dumpable == nil {
		return nil, errors.New("kdumpfile: NewWriter needs both bitmaps")
	}
	if p.MaxPFN == 0 {
		p.MaxPFN = present.Len()
	}
	if present.Start() != 0 || present.Len() != p.MaxPFN || dumpable.Start() != 0 || dumpable.Len() != p.MaxPFN {
		return nil, fmt.Errorf("kdumpfile: bitmaps cover %#x and %#x pfns, want max_mapnr %#x", present.Len(), dumpable.Len(), p.MaxPFN)
	}
	wr, err := NewWindowWriter(w, p)
	if err != nil {
		return nil, err
	}
	if err := wr.SetDumpable(dumpable.Count()); err != nil {
		return nil, err
	}
	if err := wr.WriteBitmaps(present, dumpable); err != nil {
		return nil, err
	}
	return wr, nil
}

// NewWindowWriter lays out a dump of a machine of p.MaxPFN page frames and
// writes the header, sub-header and notes; then come, optionally, the
// provisional bitmaps (WriteProvisional), the number of dumpable pages
// (SetDumpable), and the bitmaps window by window (WriteBitmaps), each
// window's pages after its bitmaps. The page descriptors' place depends only
// on max_mapnr and the notes, and the page data's on the number of dumpable
// pages: nothing needs the whole machine's bitmaps at once. The sink is not
// closed by the writer.
func NewWindowWriter(w io.WriterAt, p Params) (*Writer, error) {
	noteBytes := p.Notes
	infoOff, infoSize, hasInfo := vmcore.FindNote(noteBytes, vmcore.NoteVMCoreInfo)
	if !hasInfo && len(p.VMCoreInfo) > 0 {
		noteBytes = vmcore.AppendNote(bytes.Clone(p.Notes), vmcore.Note{Name: vmcore.NoteVMCoreInfo, Desc: p.VMCoreInfo})
		infoOff, infoSize, hasInfo = vmcore.FindNote(noteBytes[len(p.Notes):], vmcore.NoteVMCoreInfo)
		infoOff += len(p.Notes)
	}
	if len(noteBytes) > maxNoteSize {
		return nil, fmt.Errorf("kdumpfile: %d bytes of notes (more than %d)", len(noteBytes), maxNoteSize)
	}

	if p.PageSize == 0 {
		p.PageSize = 4096
	}
	if !validBlockSize(p.PageSize) {
		return nil, fmt.Errorf("kdumpfile: page size %d is not a power of two in [%d, %d]", p.PageSize, minBlockSize, maxBlockSize)
	}
	if p.Codec == "" {
		p.Codec = CodecNone
	}
	if !p.Codec.valid() {
		return nil, fmt.Errorf("kdumpfile: unknown codec %q", p.Codec)
	}
	if p.MaxPFN == 0 || p.MaxPFN > maxMaxMapnr {
		return nil, fmt.Errorf("kdumpfile: max_mapnr %#x out of range (1 to %#x)", p.MaxPFN, uint64(maxMaxMapnr))
	}
	if p.Utsname.Sysname == "" {
		p.Utsname.Sysname = "Linux"
	}
	if p.Utsname.Machine == "" {
		p.Utsname.Machine = "x86_64"
	}
	if p.BufferSize == 0 {
		p.BufferSize = DefaultBufferSize
	}
	p.BufferSize = max(p.BufferSize, 2*p.PageSize)

	bs := uint64(p.PageSize)
	l := computeLayout(bs, uint64(len(noteBytes)), p.MaxPFN)
	if 2*l.bitmapBytes/bs > math.MaxUint32 || l.subHdrBlocks > math.MaxInt32 {
		return nil, fmt.Errorf("kdumpfile: max_mapnr %#x needs more bitmap blocks than the header can hold", p.MaxPFN)
	}
	offNote := int64(bs + subHeaderSize)
	sub := SubHeader{
		PhysBase:   p.PhysBase,
		DumpLevel:  int32(p.DumpLevel),
		OffsetNote: offNote,
		SizeNote:   uint64(len(noteBytes)),
		MaxMapnr64: p.MaxPFN,
	}
	if hasInfo {
		sub.OffsetVMCoreInfo = offNote + int64(infoOff)
		sub.SizeVMCoreInfo = uint64(infoSize)
	}
	var sec int64
	if !p.CrashTime.IsZero() {
		sec = p.CrashTime.Unix()
	}
	wr := &Writer{
		w: w,
		hdr: Header{
			Signature:    Signature,
			Version:      HeaderVersion,
			Utsname:      p.Utsname,
			TimestampSec: sec,
			// Incomplete until Close clears it, last.
			Status:       p.Codec.Flag() | StatusIncomplete,
			BlockSize:    int32(bs),
			SubHdrSize:   int32(l.subHdrBlocks),
			BitmapBlocks: uint32(2 * l.bitmapBytes / bs),
			MaxMapnr:     uint32(min(p.MaxPFN, math.MaxUint32)),
			NrCPUs:       int32(p.NrCPUs),
		},
		lay:       l,
		maxPFN:    p.MaxPFN,
		pageSize:  p.PageSize,
		codec:     p.Codec,
		descBuf:   make([]byte, 0, descCacheSize),
		descStart: int64(l.descOff),
		dataBuf:   make([]byte, 0, p.BufferSize),
		dataCap:   p.BufferSize,
		sync:      p.Sync,
	}
	// Block 0: the header. Then the sub-header and the notes, padded to
	// a block. These are the first records of a flattened stream, which
	// crash --osrelease needs early.
	if err := wr.writePadded(wr.hdr.marshal(), 0, bs); err != nil {
		return nil, err
	}
	subBytes := append(sub.marshal(), noteBytes...)
	if err := wr.writePadded(subBytes, int64(bs), l.subHdrBlocks*bs); err != nil {
		return nil, err
	}

	if p.DumpLevel&1 != 0 {
		// One zero page, before all other data, shared by every zero
		// page (placed by SetDumpable).
		wr.zeroDesc = &PageDesc{Size: uint32(bs)}
	} else {
		c, err := NewCompressor(p.Codec, p.PageSize)
		if err != nil {
			return nil, err
		}
		zero := make([]byte, bs)
		out, flags := c.Compress(nil, zero)
		wr.zeroData, wr.zeroFlag = append([]byte(nil), out...), flags
	}
	return wr, nil
}

// SetDumpable sets the number of pages the dump holds (the set bits of the
// whole 2nd bitmap), which places the page data after their descriptors. It
// comes once, before the first page and its window: bitmaps written before
// it are read back (ReadWindow), those written after it are the windows of
// the pages that follow them.
func (w *Writer) SetDumpable(n uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.state != stateOpen || w.numSet:
		return errors.New("kdumpfile: SetDumpable after Close or SetDumpable")
	case n > w.maxPFN:
		return fmt.Errorf("kdumpfile: %d dumpable pages of max_mapnr %#x", n, w.maxPFN)
	}
	w.num, w.numSet = n, true
	w.dataStart = int64(w.lay.descOff + descSize*n)
	w.durable = w.dataStart
	if w.zeroDesc != nil {
		w.zeroDesc.Offset = w.dataStart
		w.dataBuf = w.dataBuf[:w.pageSize]
		clear(w.dataBuf)
	}
	return nil
}

// WriteBitmaps writes the bitmap bytes of a window of pfns: present (the
// RAM pages) and dumpable (those in the dump, a subset), which cover the
// same pfns, from the end of the last window (0 for the first) on. The
// window's dumpable pages are written next (WritePage), every one of them
// before the next window, if SetDumpable came before; the writer uses
// dumpable until then, and the caller must not change it before. Bitmaps
// written before SetDumpable (all of them, by a walk that counts) are only
// written: ReadWindow reads each back for its pages. The last window ends at max_mapnr, and the
// bitmaps' padding to a block is written with it.
func (w *Writer) WriteBitmaps(present, dumpable *bitmap.Bitmap) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return errors.New("kdumpfile: WriteBitmaps on a closed writer")
	}
	if w.err != nil {
		return w.err
	}
	start, end := present.Start(), present.Len()
	switch {
	case dumpable.Start() != start || dumpable.Len() != end:
		return fmt.Errorf("kdumpfile: bitmaps of pfns [%#x, %#x) and [%#x, %#x), want the same window", start, end, dumpable.Start(), dumpable.Len())
	case start != w.bitmapEnd && (start != 0 || w.numSet) || end <= start || end > w.maxPFN:
		// (Before SetDumpable the bitmaps may be written again from pfn 0:
		// a walk that failed is done again keeping every page class.)
		return fmt.Errorf("kdumpfile: bitmaps of pfns [%#x, %#x), want a window from %#x up to at most max_mapnr %#x", start, end, w.bitmapEnd, w.maxPFN)
	case end != w.maxPFN && end%(8*uint64(w.pageSize)) != 0:
		return fmt.Errorf("kdumpfile: window [%#x, %#x) does not end at a bitmap block", start, end)
	}
	if pfn, ok := dumpable.SubsetOf(present); !ok {
		return fmt.Errorf("kdumpfile: pfn %#x is dumpable but not present", pfn)
	}
	if w.numSet && w.winEnd != start {
		return fmt.Errorf("kdumpfile: WriteBitmaps([%#x, %#x)) after SetDumpable, with the pages' windows at %#x", start, end, w.winEnd)
	}
	if err := w.lastWindowDone(start, end); err != nil {
		return err
	}
	l := w.lay
	pad := uint64(len(present.Bytes()))
	if end == w.maxPFN {
		pad = l.bitmapBytes - start/8
	}
	if err := w.writePadded(present.Bytes(), int64(l.bitmap1Off+start/8), pad); err != nil {
		return err
	}
	if err := w.writePadded(dumpable.Bytes(), int64(l.bitmap2Off+start/8), pad); err != nil {
		return err
	}
	w.bitmapEnd = end
	if w.numSet {
		w.setWindow(dumpable)
	}
	return nil
}

// lastWindowDone checks, before the window [start, end), that every page of
// the last one was written.
func (w *Writer) lastWindowDone(start, end uint64) error {
	if w.win != nil && w.written-w.winFirst != w.winNum {
		return fmt.Errorf("kdumpfile: window [%#x, %#x): %w: %d of the last window's %d dumpable pages written", start, end, ErrOrder, w.written-w.winFirst, w.winNum)
	}
	return nil
}

func (w *Writer) setWindow(dumpable *bitmap.Bitmap) {
	w.win, w.winEnd = dumpable, dumpable.Len()
	w.winFirst, w.winNum = w.written, dumpable.Count()
}

// ReadWindow reads back from r (the sink, a file) the dumpable bitmap of a
// window whose bitmaps WriteBitmaps wrote before SetDumpable, into dumpable
// (which covers the window's pfns, from the end of the last window on), and
// makes it the window whose pages come next: so a file's writer walks
// mem_map once, writing the bitmaps as it counts, and reads them back
// rather than walking again. The writer uses dumpable until the next window;
// the caller must not change it before.
func (w *Writer) ReadWindow(r io.ReaderAt, dumpable *bitmap.Bitmap) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start, end := dumpable.Start(), dumpable.Len()
	switch {
	case w.state != stateOpen:
		return errors.New("kdumpfile: ReadWindow on a closed writer")
	case w.err != nil:
		return w.err
	case !w.numSet:
		return errors.New("kdumpfile: ReadWindow before SetDumpable")
	case start != w.winEnd || end <= start || end > w.bitmapEnd:
		return fmt.Errorf("kdumpfile: ReadWindow of pfns [%#x, %#x), want a window from %#x within the bitmaps written (up to %#x)", start, end, w.winEnd, w.bitmapEnd)
	}
	if err := w.lastWindowDone(start, end); err != nil {
		return err
	}
	b := dumpable.Bytes()
	off := int64(w.lay.bitmap2Off + start/8)
	if n, err := r.ReadAt(b, off); n < len(b) {
		return fmt.Errorf("kdumpfile: reading back the dumpable bitmap of pfns [%#x, %#x) at %#x: got %d of %d bytes: %w", start, end, off, n, len(b), err)
	}
	if e := end - start; e%8 != 0 {
		b[len(b)-1] &= byte(1)<<(e%8) - 1
	}
	w.setWindow(dumpable)
	return nil
}

// WriteProvisional writes a window of present (the RAM pages, from the
// end of the last provisional window on) as both bitmaps, before the
// windows are written for real: then the pages of a dump that dies before
// their window read as incomplete (a descriptor at offset 0, "page
// incomplete" in crash), as in a file whose bitmaps were written whole
// first, rather than as absent. It needs only the PT_LOADs, no mem_map walk.
// It is optional, and must come before the first WriteBitmaps.
func (w *Writer) WriteProvisional(present *bitmap.Bitmap) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start, end := present.Start(), present.Len()
	switch {
	case w.state != stateOpen || w.bitmapEnd > 0:
		return errors.New("kdumpfile: WriteProvisional after WriteBitmaps or Close")
	case w.err != nil:
		return w.err
	case start != w.provEnd || end <= start || end > w.maxPFN:
		return fmt.Errorf("kdumpfile: provisional bitmap of pfns [%#x, %#x), want a window from %#x up to at most max_mapnr %#x", start, end, w.provEnd, w.maxPFN)
	case end != w.maxPFN && end%(8*uint64(w.pageSize)) != 0:
		return fmt.Errorf("kdumpfile: window [%#x, %#x) does not end at a bitmap block", start, end)
	}
	l := w.lay
	pad := uint64(len(present.Bytes()))
	if end == w.maxPFN {
		pad = l.bitmapBytes - start/8
	}
	for _, off := range []uint64{l.bitmap1Off, l.bitmap2Off} {
		if err := w.writePadded(present.Bytes(), int64(off+start/8), pad); err != nil {
			return err
		}
	}
	w.provEnd = end
	return nil
}

// writePadded writes b at off followed by zeros up to size bytes, in pieces
// of at most 1 MiB.
func (w *Writer) writePadded(b []byte, off int64, size uint64) error {
	const chunk = 1 << 20
	var pad []byte
	for done := uint64(0); done < size; {
		var p []byte
		if done < uint64(len(b)) {
			p = b[done:min(uint64(len(b)), done+chunk)]
		} else {
			if pad == nil {
				pad = make([]byte, min(size-done, chunk))
			}
			p = pad[:min(size-done, uint64(len(pad)))]
		}
		if _, err := w.w.WriteAt(p, off+int64(done)); err != nil {
			return fmt.Errorf("kdumpfile: writing %d bytes at %#x: %w", len(p), off+int64(done), err)
		}
		done += uint64(len(p))
	}
	return nil
}

// NumDumpable is the number of pages the dump holds: WritePage calls expected.
func (w *Writer) NumDumpable() uint64 { return w.num }

// Size is the end of the page data written so far: the file's size once
// Close has returned.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dataStart + int64(len(w.dataBuf))
}

// Header is the main header as last written: StatusIncomplete is set until
// Close succeeds.
func (w *Writer) Header() Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hdr
}

// WritePage adds the page at pfn, which must be the next set bit of the
// dumpable bitmap. data and flags are what Compressor.Compress returned for
// the page. zero marks an all-zero page: with dump level bit 1 it gets the
// shared zero-page descriptor and data is not used; otherwise a compressed
// zero page is stored and data may be nil.
func (w *Writer) WritePage(pfn uint64, data []byte, flags uint32, zero bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return errors.New("kdumpfile: WritePage on a closed writer")
	}
	if w.err != nil {
		return w.err
	}
	if w.win == nil {
		return fmt.Errorf("kdumpfile: WritePage(%#x): %w: no bitmaps written yet", pfn, ErrOrder)
	}
	want, ok := w.win.NextSet(w.next)
	if !ok || want != pfn {
		if !ok {
			if w.written == w.num {
				return fmt.Errorf("kdumpfile: WritePage(%#x): %w: all %d dumpable pages written", pfn, ErrOrder, w.num)
			}
			return fmt.Errorf("kdumpfile: WritePage(%#x): %w: all dumpable pages of the window [%#x, %#x) written", pfn, ErrOrder, w.win.Start(), w.win.Len())
		}
		return fmt.Errorf("kdumpfile: WritePage(%#x): %w: the next dumpable pfn is %#x", pfn, ErrOrder, want)
	}
	if w.written == w.num {
		return fmt.Errorf("kdumpfile: WritePage(%#x): %w: more than the %d dumpable pages announced", pfn, ErrOrder, w.num)
	}
	var d PageDesc
	switch {
	case zero && w.zeroDesc != nil:
		d = *w.zeroDesc
	default:
		if zero {
			data, flags = w.zeroData, w.zeroFlag
		}
		switch {
		case flags == 0 && len(data) != w.pageSize:
			return fmt.Errorf("kdumpfile: WritePage(%#x): raw page of %d bytes, want %d", pfn, len(data), w.pageSize)
		case flags != 0 && flags != w.codec.Flag():
			return fmt.Errorf("kdumpfile: WritePage(%#x): flags %#x, but the dump's codec is %s", pfn, flags, w.codec)
		case flags != 0 && (len(data) == 0 || len(data) >= w.pageSize):
			return fmt.Errorf("kdumpfile: WritePage(%#x): %d bytes of compressed data for a %d-byte page", pfn, len(data), w.pageSize)
		}
		if len(w.dataBuf)+len(data) > w.dataCap {
			if err := w.flushPair(); err != nil {
				return err
			}
		}
		d = PageDesc{Offset: w.dataStart + int64(len(w.dataBuf)), Size: uint32(len(data)), Flags: flags}
		w.dataBuf = append(w.dataBuf, data...)
	}
	if len(w.descBuf)+descSize > cap(w.descBuf) {
		if err := w.flushPair(); err != nil {
			return err
		}
	}
	w.descBuf = w.descBuf[:len(w.descBuf)+descSize]
	d.put(w.descBuf[len(w.descBuf)-descSize:])
	w.written++
	w.next = pfn + 1
	return nil
}

// flushData writes the data cache.
func (w *Writer) flushData() error {
	if len(w.dataBuf) == 0 {
		return nil
	}
	n, err := w.w.WriteAt(w.dataBuf, w.dataStart)
	if err == nil && n < len(w.dataBuf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.durable = w.dataStart + int64(max(n, 0))
		w.err = fmt.Errorf("kdumpfile: writing %d bytes of page data at %#x: %w", len(w.dataBuf), w.dataStart, err)
		return w.err
	}
	w.dataStart += int64(len(w.dataBuf))
	w.durable = w.dataStart
	w.dataBuf = w.dataBuf[:0]
	return nil
}

// flushPair writes the data cache, then the descriptors, so that every
// descriptor in the sink points at data that is in the sink. Flushing both
// together (as makedumpfile does) bounds what a failure loses to one cache
// of data.
func (w *Writer) flushPair() error {
	if err := w.flushData(); err != nil {
		return err
	}
	if len(w.descBuf) == 0 {
		return nil
	}
	n, err := w.w.WriteAt(w.descBuf, w.descStart)
	if err == nil && n < len(w.descBuf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("kdumpfile: writing %d bytes of page descriptors at %#x: %w", len(w.descBuf), w.descStart, err)
		w.untear(n)
		return w.err
	}
	w.descStart += int64(len(w.descBuf))
	w.descBuf = w.descBuf[:0]
	return nil
}

// untear handles a descriptor write that stopped after n bytes: the complete
// descriptors are kept, and the written part of a torn one is overwritten
// with zeros (its space is allocated, so this can succeed on a full disk),
// making it read as never written.
func (w *Writer) untear(n int) {
	if n <= 0 {
		return
	}
	whole := n / descSize * descSize
	if part := n - whole; part > 0 {
		// Best effort: if this fails too, the reader still rejects the
		// torn descriptor as pointing past the data or at a bad size.
		w.w.WriteAt(make([]byte, part), w.descStart+int64(whole)) //nolint:errcheck
	}
	w.descStart += int64(whole)
	w.descBuf = w.descBuf[:copy(w.descBuf, w.descBuf[whole:])]
}

// Close writes what is cached, syncs it (Params.Sync), and then rewrites the
// header without StatusIncomplete — the last write, so a flattened stream
// ends with a second header record, which wins on reassembly. Close fails,
// and leaves the dump marked incomplete, if a write or the sync fails or
// fewer pages than NumDumpable were written. It does not close the sink.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateClosed:
		return nil
	case stateAborted:
		return errors.New("kdumpfile: Close after Abort")
	}
	err := w.err
	if err == nil && w.bitmapEnd != w.maxPFN {
		err = fmt.Errorf("kdumpfile: closing with the bitmaps written up to pfn %#x of max_mapnr %#x", w.bitmapEnd, w.maxPFN)
	}
	if err == nil && w.written != w.num {
		err = fmt.Errorf("kdumpfile: closing after %d of %d dumpable pages", w.written, w.num)
	}
	if err == nil {
		err = w.flushPair()
	}
	if err == nil && w.sync != nil {
		if err = w.sync(); err != nil {
			err = fmt.Errorf("kdumpfile: syncing the dump before marking it complete: %w", err)
		}
	}
	if err != nil {
		if aerr := w.abort(); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	w.state = stateClosed
	hdr := w.hdr
	hdr.Status &^= StatusIncomplete
	if _, err := w.w.WriteAt(hdr.marshal(), 0); err != nil {
		// The header in the sink may be torn: try to leave it incomplete.
		w.state = stateAborted
		if herr := w.writeIncompleteHeader(); herr != nil {
			err = errors.Join(err, herr)
		}
		return fmt.Errorf("kdumpfile: marking the dump complete: %w", err)
	}
	w.hdr = hdr
	if w.sync != nil {
		if err := w.sync(); err != nil {
			return fmt.Errorf("kdumpfile: syncing the complete header: %w", err)
		}
	}
	return nil
}

// Abort ends a dump that cannot be completed (cause says why, e.g. ENOSPC):
// it writes what it still can, keeping every written descriptor pointing at
// written data, and rewrites the header with StatusIncomplete. Pages whose
// descriptors were not written read as missing (offset 0). Abort returns nil
// if the sink now holds a valid incomplete dump.
func (w *Writer) Abort(cause error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case stateClosed:
		return fmt.Errorf("kdumpfile: Abort(%v) after Close", cause)
	case stateAborted:
		return nil
	}
	if err := w.abort(); err != nil {
		return fmt.Errorf("kdumpfile: aborting after %v: %w", cause, err)
	}
	return nil
}

func (w *Writer) abort() error {
	w.state = stateAborted
	if w.err == nil {
		// The sink may still work (the cause was elsewhere): write all.
		if w.flushPair() == nil {
			return w.writeIncompleteHeader()
		}
	}
	// Keep the descriptors whose data is in the sink.
	k := 0
	for ; k+descSize <= len(w.descBuf); k += descSize {
		d := getPageDesc(w.descBuf[k:])
		if d.Offset+int64(d.Size) > w.durable {
			break
		}
	}
	if k > 0 {
		n, err := w.w.WriteAt(w.descBuf[:k], w.descStart)
		if err != nil || n < k {
			w.untear(n)
		}
	}
	return w.writeIncompleteHeader()
}

func (w *Writer) writeIncompleteHeader() error {
	w.hdr.Status |= StatusIncomplete
	b := w.hdr.marshal()
	if _, err := w.w.WriteAt(b, 0); err != nil {
		return fmt.Errorf("kdumpfile: marking the header incomplete: %w", err)
	}
	return nil
}
