// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumplevel"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/memmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// plan is a dump worked out before its first byte is written: all that the
// writers need of the source, derived once. The writers (copyELF, writeELF,
// writeKdump) only consume it.
type plan struct {
	// format is what is written: FormatELF, FormatKdump, or FormatFlat (also
	// for FormatKdump on a sink it cannot seek in).
	format string
	// copy is the ELF copy (dump level 0): the core as it is, and nothing
	// else planned.
	copy bool
	src  io.ReaderAt
	core *vmcore.Core
	// size is the output's size in bytes when it is known before writing
	// (the ELF formats), else -1.
	size int64
	// total is the progress's whole: bytes of the source to process.
	total int64
	// pages counts the page frames by fate, as far as planning knows.
	pages    PageCounts
	warnings []string

	// The page frames (all formats but the ELF copy): the page size, max_mapnr,
	// the runs of RAM to read in pfn order (for kdump only the dumpable ones),
	// the RAM pages (the 1st bitmap), and those to dump (the 2nd: present
	// without the excluded page classes; present itself if none are).
	pageSize          uint64
	maxPFN            uint64
	ranges            []pageRange
	present, dumpable *bitmap.Bitmap

	// The filtered ELF: the pages left out (excluded classes and zero pages),
	// the file up to the first data (headers, notes, padding), and the data
	// after it, in file order.
	excluded *bitmap.Bitmap
	head     []byte
	data     []pageRange
}

// seekable reports whether the kdump format can be written to w as it is:
// it writes at offsets (io.WriterAt), and reads back for the sha256
// (io.ReaderAt). Any other sink gets the flattened stream.
func seekable(w io.Writer) bool {
	_, wa := w.(io.WriterAt)
	_, ra := w.(io.ReaderAt)
	return wa && ra
}

// newPlan plans the dump of core (read through src) in o.Format to w.
// The filtered ELF's plan scans the source for zero pages: the first half
// of the work, reported to o.Progress. On error the plan says what it
// found so far.
func newPlan(ctx context.Context, src io.ReaderAt, core *vmcore.Core, w io.Writer, o Options, start time.Time) (*plan, error) {
	p := &plan{format: o.Format, src: src, core: core, size: -1}
	if p.format == FormatKdump && !seekable(w) {
		p.format = FormatFlat
	}
	if p.format == FormatELF && o.DumpLevel == 0 {
		p.copy, p.size, p.total = true, core.Size, core.Size
		return p, nil
	}
	p.pageSize = pageSize(core)
	p.ranges, p.maxPFN = pageRanges(core, p.pageSize)
	if p.format == FormatELF {
		p.excluded = bitmap.New(p.maxPFN)
	}
	p.present = bitmap.New(p.maxPFN)
	for _, r := range p.ranges {
		p.present.SetRange(r.start, r.end)
	}
	p.pages.Total = p.present.Count()
	p.dumpable = p.excludeClasses(o.DumpLevel)
	if p.format == FormatELF {
		return p, p.planELF(ctx, o, start)
	}
	// In the kdump format zero pages stay in the 2nd bitmap and share one
	// descriptor (research/makedumpfile.md 1.4): only the excluded classes
	// are left unread.
	p.ranges = restrict(p.ranges, p.dumpable)
	p.total = int64(p.dumpable.Count() * p.pageSize)
	return p, nil
}

// planELF finds the pages the filtered ELF leaves out (the excluded classes,
// then the zero pages among the rest), cuts the PT_LOADs at their runs and
// lays out the file.
func (p *plan) planELF(ctx context.Context, o Options, start time.Time) error {
	ps := p.pageSize
	if p.dumpable != p.present {
		for pfn, ok := p.present.NextSet(0); ok; pfn, ok = p.present.NextSet(pfn + 1) {
			if !p.dumpable.Get(pfn) {
				p.excluded.Set(pfn)
			}
		}
	}
	p.total = int64(p.pages.Total * ps)
	if o.DumpLevel&dumplevel.Zero != 0 {
		var seen uint64
		scan := &pipeline{src: p.src, ranges: restrict(p.ranges, p.dumpable), pageSize: ps, chunkPages: o.chunkPages(),
			workers: o.Workers, inflight: 2 * o.Workers, detectZero: true}
		err := scan.run(ctx, func(pfn uint64, po pageOut) error {
			if po.zero {
				p.excluded.Set(pfn)
				p.pages.Zero++
			}
			seen++
			if o.Progress != nil && seen%uint64(o.chunkPages()) == 0 {
				// The scan is the first half of the work.
				o.Progress(Progress{Done: int64(seen*ps) / 2, Total: p.total, Elapsed: o.Now().Sub(start)})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("collect: scan for zero pages: %w", err)
		}
	}
	var segs []elfSeg
	for gap := uint64(mergeGap); ; gap *= 4 {
		if segs = elfSegments(p.core.Loads, p.excluded, ps, gap); len(segs) < maxELFPhdrs {
			break
		}
	}
	p.head, p.data, p.size = elfLayout(p.core, segs, ps)
	return nil
}

// excludeClasses returns the pages to dump: present minus the page classes
// of level (bits 2-16) found by the mem_map walk. If the walk is impossible
// (VMCOREINFO lacks what it needs) every present page is kept and a warning
// says so: a bigger dump rather than none.
func (p *plan) excludeClasses(level int) *bitmap.Bitmap {
	if level&^dumplevel.Zero == 0 {
		return p.present
	}
	fail := func(err error) *bitmap.Bitmap {
		p.warnings = append(p.warnings, fmt.Sprintf("dump level %d: cannot exclude page classes (%v); keeping those pages", level, err))
		return p.present
	}
	if p.core.Info == nil {
		return fail(errors.New("the core has no VMCOREINFO"))
	}
	k, err := dumpmem.NewKernel(dumpmem.FromELF(p.src, p.core), p.core.Info, p.core.Loads)
	if err != nil {
		return fail(err)
	}
	dumpable, counts, err := memmap.Exclude(k, level, p.maxPFN, p.present)
	if err != nil {
		return fail(err)
	}
	p.pages.Excluded = counts.Total()
	if counts.Unreadable > 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("%d struct pages could not be read; their pages are kept", counts.Unreadable))
	}
	return dumpable
}

// result is the Result of a dump by this plan before anything is written.
func (p *plan) result(o Options) Result {
	res := Result{Format: p.format, Codec: "none", DumpLevel: o.DumpLevel, Pages: p.pages, Warnings: p.warnings}
	if p.format != FormatELF {
		res.Codec = o.Codec
	}
	return res
}
