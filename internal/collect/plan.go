// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
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
//
// Nothing in a plan grows with the machine's page count: page frames are
// handled in windows of windowPages pfns (forWindows), each window's
// bitmaps built from the PT_LOADs and the mem_map walk, used, and dropped.
// What the plan keeps is counts (the kdump format's dumpable pages) and,
// for the filtered ELF, a bounded list of PT_LOADs (maxELFPhdrs).
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

	// The page frames (all formats but the ELF copy): the page size,
	// max_mapnr, the runs of RAM in pfn order (one per PT_LOAD).
	pageSize uint64
	maxPFN   uint64
	ranges   []pageRange
	// window is the pfns of a window: windowPages (tests make it smaller).
	window uint64
	// level is the dump level; kernel reads the crashed kernel's memory for
	// the mem_map walk, nil when no page classes are excluded (none asked
	// for, or the walk is impossible: a warning says so).
	level  int
	kernel *dumpmem.Kernel
	// numDumpable is the kdump format's page count (set bits of the 2nd
	// bitmap), counted by the first walk: the descriptors' table size.
	numDumpable uint64

	// The filtered ELF: the file up to the first data (headers, notes,
	// padding), and the data after it, in file order.
	head []byte
	data []pageRange
}

// windowPages is the window of page frames the plan and the writers hold
// bitmaps for: 2^20 pfns (4 GiB of 4 KiB pages), 128 KiB per bitmap. A
// multiple of a bitmap block's pfns (the kdump writer writes whole blocks)
// and of a SPARSEMEM section's (the mem_map walk reads sections once).
const windowPages = 1 << 20

// window is the bitmaps of one window of page frames [start, end).
type window struct {
	start, end        uint64
	present, dumpable *bitmap.Bitmap
}

// forWindows calls fn for each window of page frames in ascending order
// with its present bitmap (RAM: the PT_LOADs) and dumpable bitmap (present
// without the page classes ex excludes; present itself when ex is nil).
// The bitmaps are reused: they are valid only during the call.
func (p *plan) forWindows(ctx context.Context, ex *memmap.Excluder, fn func(w *window, cnt memmap.Counts) error) error {
	w := &window{present: bitmap.NewRange(0, 0), dumpable: bitmap.NewRange(0, 0)}
	for start := uint64(0); start < p.maxPFN; start += p.window {
		if ctx.Err() != nil {
			return fmt.Errorf("collect: stopped at pfn %#x: %w", start, context.Cause(ctx))
		}
		end := min(start+p.window, p.maxPFN)
		w.start, w.end = start, end
		w.present.Reset(start, end)
		w.dumpable.Reset(start, end)
		for _, r := range p.ranges {
			if a, b := max(r.start, start), min(r.end, end); a < b {
				w.present.SetRange(a, b)
			}
		}
		copy(w.dumpable.Bytes(), w.present.Bytes())
		var cnt memmap.Counts
		if ex != nil {
			var err error
			if cnt, err = ex.Window(w.dumpable, start, end); err != nil {
				return &walkError{fmt.Errorf("mem_map walk of pfns [%#x, %#x): %w", start, end, err)}
			}
		}
		if err := fn(w, cnt); err != nil {
			return err
		}
	}
	return nil
}

// walkError is a failed mem_map walk: the plan then keeps every page class.
type walkError struct{ err error }

func (e *walkError) Error() string { return e.err.Error() }
func (e *walkError) Unwrap() error { return e.err }

// seekable reports whether the kdump format can be written to w as it is:
// it writes at offsets (io.WriterAt), and reads back its bitmaps and, unless
// NoHash, the whole file for the sha256 (io.ReaderAt). Any other sink gets
// the flattened stream.
func seekable(w io.Writer) bool {
	_, wa := w.(io.WriterAt)
	_, ra := w.(io.ReaderAt)
	return wa && ra
}

// newPlan plans the dump of core (read through src) in o.Format to w. The
// kdump plan walks mem_map once to count the dumpable pages; the filtered
// ELF's also scans the source for zero pages (the first half of the work,
// reported to o.Progress) and cuts the PT_LOADs. On error the plan says
// what it found so far.
func newPlan(ctx context.Context, src io.ReaderAt, core *vmcore.Core, w io.Writer, o Options, start time.Time) (*plan, error) {
	p := &plan{format: o.Format, src: src, core: core, size: -1, level: o.DumpLevel, window: windowPages}
	if o.window > 0 {
		p.window = o.window
	}
	if p.format == FormatKdump && !seekable(w) {
		p.format = FormatFlat
	}
	if p.format == FormatELF && o.DumpLevel == 0 {
		p.copy, p.size, p.total = true, core.Size, core.Size
		return p, nil
	}
	p.pageSize = pageSize(core)
	p.ranges, p.maxPFN = pageRanges(core, p.pageSize)
	p.setupExclusion()
	if p.format == FormatELF {
		return p, p.planELF(ctx, o, start)
	}
	// The kdump format's pages are counted by writeKdump (countKdump),
	// after it has written the header.
	return p, nil
}

// countKdump counts the kdump format's dumpable pages by a walk that keeps
// only counts: the descriptors come before the data, so their number is
// needed before the first page is written. In the kdump format zero pages
// stay in the 2nd bitmap and share one descriptor (research/makedumpfile.md
// 1.4): only the excluded classes are left unread.
//
// each is called with every window's bitmaps (to write them). If the walk
// fails and is done again keeping every page class, each sees the windows
// again from the first.
func (p *plan) countKdump(ctx context.Context, each func(w *window) error) error {
	err := p.walk(func(ex *memmap.Excluder, unreadable *uint64) error {
		p.pages, p.numDumpable = PageCounts{}, 0
		return p.forWindows(ctx, ex, func(w *window, cnt memmap.Counts) error {
			p.pages.Total += w.present.Count()
			p.pages.Excluded += cnt.Total()
			*unreadable += cnt.Unreadable
			p.numDumpable += w.dumpable.Count()
			return each(w)
		})
	})
	p.total = int64(p.numDumpable * p.pageSize)
	return err
}

// walk runs pass (one walk of the windows, with the Excluder of the dump
// level or nil); if the mem_map walk fails, it warns and runs pass again
// keeping every page class: a bigger dump rather than none.
func (p *plan) walk(pass func(ex *memmap.Excluder, unreadable *uint64) error) error {
	var unreadable uint64
	ex, err := p.excluder()
	if err == nil {
		err = pass(ex, &unreadable)
	}
	var we *walkError
	if errors.As(err, &we) {
		p.warnings = append(p.warnings, fmt.Sprintf("dump level %d: cannot exclude page classes (%v); keeping those pages", p.level, err))
		p.kernel, unreadable = nil, 0
		err = pass(nil, &unreadable)
	}
	if unreadable > 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("%d struct pages could not be read; their pages are kept", unreadable))
	}
	return err
}

// planELF finds the pages the filtered ELF leaves out (the excluded classes,
// then the zero pages among the rest), cuts the PT_LOADs at their runs and
// lays out the file.
func (p *plan) planELF(ctx context.Context, o Options, start time.Time) error {
	ps := p.pageSize
	zero := bitmap.NewRange(0, 0)
	segs := newSegBuilder(p.core.Loads, ps, p.maxPFN)
	scan := &pipeline{src: p.src, pageSize: ps, chunkPages: o.chunkPages(),
		workers: o.Workers, inflight: 2 * o.Workers, detectZero: true}
	err := p.walk(func(ex *memmap.Excluder, unreadable *uint64) error {
		p.pages = PageCounts{}
		segs.reset()
		// The total (for progress) is known only after the walk; the scan
		// reports against the RAM of the PT_LOADs.
		var ram, seen uint64
		for _, r := range p.ranges {
			ram += r.end - r.start
		}
		return p.forWindows(ctx, ex, func(w *window, cnt memmap.Counts) error {
			p.pages.Total += w.present.Count()
			p.pages.Excluded += cnt.Total()
			*unreadable += cnt.Unreadable
			if o.DumpLevel&dumplevel.Zero != 0 {
				zero.Reset(w.start, w.end)
				scan.ranges = runsOf(w.dumpable, p.ranges, w.start, w.end)
				err := scan.run(ctx, func(pfn uint64, po pageOut) error {
					if po.zero {
						zero.Set(pfn)
						p.pages.Zero++
					}
					seen++
					if o.Progress != nil && seen%uint64(o.chunkPages()) == 0 {
						// The scan is the first half of the work.
						o.Progress(Progress{Done: int64(seen*ps) / 2, Total: int64(ram * ps), Elapsed: o.Now().Sub(start)})
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("collect: scan for zero pages: %w", err)
				}
				db, zb := w.dumpable.Bytes(), zero.Bytes()
				for i := range db {
					db[i] &^= zb[i]
				}
			}
			segs.add(w.dumpable, w.start, w.end)
			return nil
		})
	})
	p.total = int64(p.pages.Total * ps)
	if err != nil {
		return err
	}
	p.head, p.data, p.size = elfLayout(p.core, segs.segments(), ps)
	return nil
}

// setupExclusion decides whether the mem_map walk excludes page classes
// (dump level bits 2-16): it needs VMCOREINFO and the kernel's page
// tables. If it is impossible, every present page is kept and a warning
// says so.
func (p *plan) setupExclusion() {
	if p.level&^dumplevel.Zero == 0 {
		return
	}
	fail := func(err error) {
		p.warnings = append(p.warnings, fmt.Sprintf("dump level %d: cannot exclude page classes (%v); keeping those pages", p.level, err))
	}
	if p.core.Info == nil {
		fail(errors.New("the core has no VMCOREINFO"))
		return
	}
	k, err := dumpmem.NewKernel(dumpmem.FromELF(p.src, p.core), p.core.Info, p.core.Loads)
	if err != nil {
		fail(err)
		return
	}
	if _, err := memmap.NewExcluder(k, p.level); err != nil {
		fail(err)
		return
	}
	p.kernel = k
}

// excluder returns a fresh Excluder for a walk of the windows (nil when no
// page classes are excluded).
func (p *plan) excluder() (*memmap.Excluder, error) {
	if p.kernel == nil {
		return nil, nil
	}
	ex, err := memmap.NewExcluder(p.kernel, p.level)
	if err != nil {
		return nil, &walkError{err}
	}
	return ex, nil
}

// runsOf is the runs of pfns set in keep within [start, end), cut at the
// ranges (PT_LOADs) that back them, in ascending order.
func runsOf(keep *bitmap.Bitmap, ranges []pageRange, start, end uint64) iter.Seq[pageRange] {
	return func(yield func(pageRange) bool) {
		for _, r := range ranges {
			a, b := max(r.start, start), min(r.end, end)
			for pfn := a; pfn < b; {
				s, ok := keep.NextSet(pfn)
				if !ok || s >= b {
					break
				}
				e := min(keep.NextClear(s), b)
				if !yield(pageRange{start: s, end: e, load: r.load}) {
					return
				}
				pfn = e
			}
		}
	}
}

// result is the Result of a dump by this plan before anything is written.
func (p *plan) result(o Options) Result {
	res := Result{Format: p.format, Codec: "none", DumpLevel: o.DumpLevel, Pages: p.pages, Warnings: p.warnings}
	if p.format != FormatELF {
		res.Codec = o.Codec
	}
	return res
}
