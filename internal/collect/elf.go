// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// elfMark keeps an ELF dump marked incomplete (vmcore.FlagIncomplete in e_flags)
// until it is whole: the header is written with the mark, and clear rewrites
// e_flags once the data is durable. It needs a sink it can seek in; on a
// stream (sftp, scp, a pipe) the mark cannot be taken back, so the header is
// written as it is and only the file name (vmcore.incomplete until the
// rename) and the manifest tell an unfinished dump.
type elfMark struct {
	wa    io.WriterAt
	sync  func() error
	flags uint32 // e_flags of the finished dump
}

// newELFMark returns nil if w cannot be written at an offset.
func newELFMark(w io.Writer, flags uint32) *elfMark {
	wa, ok := w.(io.WriterAt)
	if !ok {
		return nil
	}
	m := &elfMark{wa: wa, flags: flags}
	if s, ok := w.(interface{ Sync() error }); ok {
		m.sync = s.Sync
	}
	return m
}

// marked returns a copy of an ELF header block with the incomplete mark set.
func (m *elfMark) marked(head []byte) []byte {
	if m == nil {
		return head
	}
	f, off := vmcore.FlagsField(m.flags | vmcore.FlagIncomplete)
	if len(head) < int(off)+len(f) {
		return head
	}
	b := bytes.Clone(head)
	copy(b[off:], f)
	return b
}

// clear syncs the data, then writes the finished e_flags and syncs again.
func (m *elfMark) clear() error {
	if m == nil {
		return nil
	}
	if m.sync != nil {
		if err := m.sync(); err != nil {
			return fmt.Errorf("syncing the dump before marking it complete: %w", err)
		}
	}
	if _, err := m.wa.WriteAt(vmcore.FlagsField(m.flags)); err != nil {
		return fmt.Errorf("marking the dump complete (e_flags): %w", err)
	}
	if m.sync != nil {
		if err := m.sync(); err != nil {
			return fmt.Errorf("syncing the complete ELF header: %w", err)
		}
	}
	return nil
}

// writeHead writes head (marked incomplete when mark is set) and hashes it
// as it will be when the dump is complete.
func (hw *hashWriter) writeHead(head []byte, mark *elfMark) error {
	out := mark.marked(head)
	n, err := hw.w.Write(out)
	if hw.h != nil {
		hw.h.Write(head[:n])
	}
	hw.n += int64(n)
	return err
}

// mergeGap is the shortest run of excluded pages left out of an ELF dump:
// shorter runs are written as data, so a fragmented memory does not need a
// program header per page.
const mergeGap = 16

// maxELFPhdrs bounds the program headers of a filtered ELF (far below
// PN_XNUM): the gap grows until the PT_LOADs fit, so the plan holds at most
// this many runs (16 bytes each), segments and headers (56 bytes each),
// about 1.5 MiB, however large and fragmented the machine.
const maxELFPhdrs = 8192

// elfSeg is one PT_LOAD of the output: filePages of data from pfn on, then
// memPages-filePages of excluded (zero) pages.
type elfSeg struct {
	load               vmcore.Phdr
	pfn                uint64
	filePages          uint64
	memPages           uint64
	paddr, vaddr, tail uint64 // tail: bytes of p_memsz past the last page
	// whole: the PT_LOAD is copied unchanged (not page-aligned).
	whole bool
}

// run is a run of kept page frames [a, b).
type run struct{ a, b uint64 }

// segBuilder cuts each PT_LOAD at the excluded runs of at least gap pages,
// fed window by window with the kept page frames (add). Shorter excluded
// runs are merged into the data; when the PT_LOADs would not fit in
// maxELFPhdrs, the gap grows fourfold and the runs so far are merged again,
// which gives what cutting the whole machine at that gap would. PT_LOADs
// that are not page-aligned are kept whole.
type segBuilder struct {
	loads []vmcore.Phdr
	ps    uint64
	whole []bool
	kept  [][]run // per PT_LOAD
	n     int     // runs in kept
	gap   uint64
}

func newSegBuilder(loads []vmcore.Phdr, ps, maxPFN uint64) *segBuilder {
	b := &segBuilder{loads: loads, ps: ps, whole: make([]bool, len(loads)), kept: make([][]run, len(loads))}
	for i, l := range loads {
		b.whole[i] = l.Paddr%ps != 0 || l.Filesz%ps != 0 || (l.Paddr+l.Filesz)/ps > maxPFN
	}
	b.reset()
	return b
}

func (b *segBuilder) reset() {
	for i := range b.kept {
		b.kept[i] = b.kept[i][:0]
	}
	b.n, b.gap = 0, mergeGap
}

// add records the kept frames of the window [start, end).
func (b *segBuilder) add(kept *bitmap.Bitmap, start, end uint64) {
	for i, l := range b.loads {
		if b.whole[i] {
			continue
		}
		s, e := max(l.Paddr/b.ps, start), min((l.Paddr+l.Filesz)/b.ps, end)
		for pfn := s; pfn < e; {
			a, ok := kept.NextSet(pfn)
			if !ok || a >= e {
				break
			}
			z := min(kept.NextClear(a), e)
			b.push(i, a, z)
			pfn = z
		}
	}
}

func (b *segBuilder) push(i int, a, z uint64) {
	k := b.kept[i]
	if n := len(k); n > 0 && a-k[n-1].b < b.gap {
		k[n-1].b = z
		return
	}
	b.kept[i] = append(k, run{a, z})
	b.n++
	// Each PT_LOAD may also need a leading segment of excluded pages; and
	// the PT_NOTE.
	for b.n+len(b.loads)+1 >= maxELFPhdrs {
		b.gap *= 4
		b.n = 0
		for j, k := range b.kept {
			out := k[:0]
			for _, r := range k {
				if n := len(out); n > 0 && r.a-out[n-1].b < b.gap {
					out[n-1].b = r.b
					continue
				}
				out = append(out, r)
			}
			b.kept[j] = out
			b.n += len(out)
		}
	}
}

// segments is the PT_LOADs of the output, in the order of the core's.
func (b *segBuilder) segments() []elfSeg {
	ps := b.ps
	var segs []elfSeg
	for i, l := range b.loads {
		s, e := l.Paddr/ps, (l.Paddr+l.Filesz)/ps
		if b.whole[i] {
			segs = append(segs, elfSeg{load: l, pfn: s, paddr: l.Paddr, vaddr: l.Vaddr, whole: true})
			continue
		}
		kept := b.kept[i]
		memEnd := (l.Paddr + l.Memsz)
		mk := func(a, z, next uint64) elfSeg {
			return elfSeg{load: l, pfn: a, filePages: z - a, memPages: next - a,
				paddr: a * ps, vaddr: l.Vaddr + (a*ps - l.Paddr)}
		}
		if len(kept) == 0 || kept[0].a > s {
			next := e
			if len(kept) > 0 {
				next = kept[0].a
			}
			segs = append(segs, mk(s, s, next))
		}
		for j, k := range kept {
			next := e
			if j+1 < len(kept) {
				next = kept[j+1].a
			}
			segs = append(segs, mk(k.a, k.b, next))
		}
		segs[len(segs)-1].tail = memEnd - e*ps
	}
	return segs
}

// elfLayout lays out the filtered ELF of core: the ELF header (the core's,
// but for the layout), the PT_NOTE with the core's notes, a PT_LOAD per
// segment, the notes, and zeros up to a page; then the segments' data. It
// returns that head, the data in file order and the file's size.
func elfLayout(core *vmcore.Core, segs []elfSeg, ps uint64) (head []byte, data []pageRange, size int64) {
	notes := core.NoteBytes
	phnum := 1 + len(segs)
	h := core.Header
	h.Phoff, h.Shoff, h.Phnum, h.Shentsize, h.Shnum, h.Shstrndx = vmcore.EhdrSize, 0, phnum, 0, 0, 0
	noteOff := uint64(vmcore.EhdrSize + phnum*vmcore.PhdrSize)
	off := (noteOff + uint64(len(notes)) + ps - 1) / ps * ps
	head = h.Append(make([]byte, 0, off))
	head = vmcore.Phdr{Type: vmcore.PTNote, Offset: noteOff, Filesz: uint64(len(notes)), Memsz: uint64(len(notes))}.Append(head)
	for _, s := range segs {
		fs, ms := s.filePages*ps, s.memPages*ps+s.tail
		if s.whole {
			fs, ms = s.load.Filesz, s.load.Memsz
		}
		head = vmcore.Phdr{Type: vmcore.PTLoad, Flags: s.load.Flags, Offset: off, Vaddr: s.vaddr, Paddr: s.paddr, Filesz: fs, Memsz: ms}.Append(head)
		off += fs
		if s.whole {
			data = append(data, pageRange{whole: true, load: s.load})
		} else if s.filePages > 0 {
			data = append(data, pageRange{start: s.pfn, end: s.pfn + s.filePages, load: s.load})
		}
	}
	head = append(head, notes...)
	head = append(head, make([]byte, cap(head)-len(head))...) // zeros up to the first data
	return head, data, int64(off)
}

// writeELF writes the ELF core without the excluded pages that p laid out:
// the head, then the kept pages front to back (the second half of the
// work, after the plan's zero-page scan).
func (p *plan) writeELF(ctx context.Context, w io.Writer, o Options, start time.Time) (Result, error) {
	res := p.result(o)
	ps := p.pageSize
	hw := &hashWriter{w: w, h: o.newHash()}
	mark := newELFMark(w, p.core.Header.Flags)
	fail := func(err error) (Result, error) {
		// The header written says incomplete (mark), and stays so.
		res.Bytes, res.SHA256, res.Duration = hw.n, sumHex(hw.h), o.Now().Sub(start)
		return res, fmt.Errorf("collect: %w", err)
	}
	if err := hw.writeHead(p.head, mark); err != nil {
		return fail(err)
	}
	var written uint64
	for _, d := range p.data {
		if d.whole {
			// A PT_LOAD we do not split is copied as it is.
			if _, err := io.Copy(hw, io.NewSectionReader(p.src, int64(d.load.Offset), int64(d.load.Filesz))); err != nil {
				return fail(err)
			}
			continue
		}
		copyPl := &pipeline{src: p.src, ranges: slices.Values([]pageRange{d}), pageSize: ps, chunkPages: o.chunkPages(), workers: 1, inflight: 2}
		err := copyPl.run(ctx, func(pfn uint64, po pageOut) error {
			written++
			if o.Progress != nil && written%uint64(o.chunkPages()) == 0 {
				o.Progress(Progress{Done: p.total/2 + int64(written*ps)/2, Total: p.total, Elapsed: o.Now().Sub(start)})
			}
			_, err := hw.Write(po.data)
			return err
		})
		if err != nil {
			return fail(err)
		}
	}
	if err := mark.clear(); err != nil {
		return fail(err)
	}
	res.Pages.Excluded = p.pages.Excluded + p.pages.Zero
	res.Pages.Dumped = res.Pages.Total - res.Pages.Excluded
	res.Bytes, res.SHA256, res.Duration = hw.n, sumHex(hw.h), o.Now().Sub(start)
	if o.Progress != nil {
		o.Progress(Progress{Done: p.total, Total: p.total, Elapsed: res.Duration})
	}
	return res, nil
}
