// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
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
	hw.h.Write(head[:n])
	hw.n += int64(n)
	return err
}

// mergeGap is the shortest run of excluded pages left out of an ELF dump:
// shorter runs are written as data, so a fragmented memory does not need a
// program header per page.
const mergeGap = 16

// maxELFPhdrs keeps the program header count below PN_XNUM.
const maxELFPhdrs = 0xfff0

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

// elfSegments splits each PT_LOAD at the excluded runs of at least gap pages.
// PT_LOADs that are not page-aligned are kept whole.
func elfSegments(loads []vmcore.Phdr, excluded *bitmap.Bitmap, ps, gap uint64) []elfSeg {
	var segs []elfSeg
	for _, l := range loads {
		s, e := l.Paddr/ps, (l.Paddr+l.Filesz)/ps
		if l.Paddr%ps != 0 || l.Filesz%ps != 0 || e > excluded.Len() {
			segs = append(segs, elfSeg{load: l, pfn: s, paddr: l.Paddr, vaddr: l.Vaddr, whole: true})
			continue
		}
		ex := func(pfn uint64) bool { return excluded.Get(pfn) }
		// Kept runs, with short excluded runs merged in.
		type run struct{ a, b uint64 }
		var kept []run
		for pfn := s; pfn < e; {
			if !ex(pfn) {
				a := pfn
				for pfn < e && !ex(pfn) {
					pfn++
				}
				if n := len(kept); n > 0 && a-kept[n-1].b < gap {
					kept[n-1].b = pfn
				} else {
					kept = append(kept, run{a, pfn})
				}
				continue
			}
			pfn++
		}
		memEnd := (l.Paddr + l.Memsz)
		mk := func(a, b, next uint64) elfSeg {
			return elfSeg{load: l, pfn: a, filePages: b - a, memPages: next - a,
				paddr: a * ps, vaddr: l.Vaddr + (a*ps - l.Paddr)}
		}
		if len(kept) == 0 || kept[0].a > s {
			next := e
			if len(kept) > 0 {
				next = kept[0].a
			}
			segs = append(segs, mk(s, s, next))
		}
		for i, k := range kept {
			next := e
			if i+1 < len(kept) {
				next = kept[i+1].a
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
	hw := &hashWriter{w: w, h: sha256.New()}
	mark := newELFMark(w, p.core.Header.Flags)
	fail := func(err error) (Result, error) {
		// The header written says incomplete (mark), and stays so.
		res.Bytes, res.SHA256, res.Duration = hw.n, hex.EncodeToString(hw.h.Sum(nil)), o.Now().Sub(start)
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
		copyPl := &pipeline{src: p.src, ranges: []pageRange{d}, pageSize: ps, chunkPages: o.chunkPages(), workers: 1, inflight: 2}
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
	res.Pages.Excluded = p.excluded.Count()
	res.Pages.Dumped = res.Pages.Total - res.Pages.Excluded
	res.Bytes, res.SHA256, res.Duration = hw.n, hex.EncodeToString(hw.h.Sum(nil)), o.Now().Sub(start)
	if o.Progress != nil {
		o.Progress(Progress{Done: p.total, Total: p.total, Elapsed: res.Duration})
	}
	return res, nil
}
