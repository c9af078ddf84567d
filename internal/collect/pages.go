// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"math"
	"sort"
	"sync"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// pageRange is a run of page frames backed by one PT_LOAD: pfns [start, end).
type pageRange struct {
	start, end uint64
	load       vmcore.Phdr
	whole      bool // (ELF writer) copy load as it is
}

// fileOffset is the offset in the core file of physical address addr, which
// is inside r's file image.
func (r pageRange) fileOffset(addr uint64) uint64 { return r.load.Offset + (addr - r.load.Paddr) }

// pageRanges maps the core's physical memory to page frames. Like
// makedumpfile's first bitmap, a PT_LOAD covers [paddr/ps, (paddr+memsz)/ps)
// (both ends round down), and a frame covered by several PT_LOADs (the kernel
// text is also in the direct map) is read from the first by address.
func pageRanges(c *vmcore.Core, ps uint64) (ranges []pageRange, maxPFN uint64) {
	loads := append([]vmcore.Phdr(nil), c.Loads...)
	sort.SliceStable(loads, func(i, j int) bool { return loads[i].Paddr < loads[j].Paddr })
	next := uint64(0)
	for _, l := range loads {
		start, end := l.Paddr/ps, (l.Paddr+l.Memsz)/ps
		start = max(start, next)
		if start >= end {
			continue
		}
		ranges = append(ranges, pageRange{start: start, end: end, load: l})
		next = end
		maxPFN = max(maxPFN, end)
	}
	return ranges, maxPFN
}

// readPages reads n pages from pfn on into buf: the bytes inside the
// PT_LOAD's file image from the source, the rest (p_memsz beyond p_filesz,
// or a partial page's edges) as zeros.
func readPages(src io.ReaderAt, r pageRange, pfn uint64, n int, ps uint64, buf []byte) error {
	lo, hi := pfn*ps, (pfn+uint64(n))*ps
	buf = buf[:hi-lo]
	fileLo, fileHi := max(lo, r.load.Paddr), min(hi, r.load.Paddr+r.load.Filesz)
	if fileLo >= fileHi {
		clear(buf)
		return nil
	}
	clear(buf[:fileLo-lo])
	clear(buf[fileHi-lo:])
	off := int64(r.fileOffset(fileLo))
	if m, err := src.ReadAt(buf[fileLo-lo:fileHi-lo], off); m < int(fileHi-fileLo) {
		return fmt.Errorf("read pfn %#x..%#x at file offset %#x: got %d of %d bytes: %w", pfn, pfn+uint64(n), off, m, fileHi-fileLo, err)
	}
	return nil
}

// viewer is a source that lends its bytes in place: vmcore.File, through
// its mmap windows. The pipeline then zero-checks and compresses pages where
// they are mapped, and stores a raw page from there, instead of first
// copying each into its buffer (on one CPU the copy was a tenth of ukdump
// collect's time, at dump level 31 as at 1).
type viewer interface {
	View(off int64, n int) (b []byte, release func(), ok bool)
}

// view returns the n pages from pfn on in place, and the function that
// gives them back, if they are all inside r's file image and the source
// lends them (p.lender).
func (p *pipeline) view(r pageRange, pfn uint64, n int) ([]byte, func(), bool) {
	lo, hi := pfn*p.pageSize, (pfn+uint64(n))*p.pageSize
	if p.lender == nil || lo < r.load.Paddr || hi > r.load.Paddr+r.load.Filesz {
		return nil, nil, false
	}
	return p.lender.View(int64(r.fileOffset(lo)), int(hi-lo))
}

// zeroPage is compared with pages up to its size: bytes.Equal is the
// runtime's vectorised memequal, several times faster than a Go loop over
// the page (a dump of a large idle machine is mostly zero pages). Reading it
// maps the kernel's shared zero page: it costs no memory.
var zeroPage [64 << 10]byte

// isZero reports whether a page is all zeros.
func isZero(p []byte) bool {
	for len(p) > len(zeroPage) {
		if !bytes.Equal(p[:len(zeroPage)], zeroPage[:]) {
			return false
		}
		p = p[len(zeroPage):]
	}
	return bytes.Equal(p, zeroPage[:len(p)])
}

// chunk is a run of pages handled by one worker.
type chunk struct {
	seq   int
	r     pageRange
	pfn   uint64
	n     int
	in    []byte // the pages as read
	out   []byte // their stored forms, back to back
	pages []pageOut
	err   error
	// release gives back the source's bytes that the pages were read in
	// place from (view), or is nil: pages then point into in and out.
	release func()
}

// releaseView releases what the chunk's pages lent from the source: after it,
// c.pages must not be used.
func (c *chunk) releaseView() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
	c.pages = c.pages[:0]
}

// pageOut is one processed page.
type pageOut struct {
	data  []byte // slice of chunk.out or chunk.in
	flags uint32
	zero  bool
}

// process is what a worker does with each page: decide its stored form.
// It may use dst as scratch and return a slice of it, or of page.
type processFunc func(dst, page []byte) (out []byte, flags uint32)

// pipeline reads the pages of ranges in order, runs process on them on
// workers goroutines, and hands them to emit in pfn order. Memory is bounded
// by inflight chunks of chunkPages pages (two buffers each, or one if the
// source lends its pages in place), whatever the dump's size.
type pipeline struct {
	src        io.ReaderAt
	ranges     iter.Seq[pageRange]
	pageSize   uint64
	chunkPages int
	workers    int
	inflight   int
	// newProcess makes one worker's page function (nil: pages stored as read).
	newProcess func() (processFunc, error)
	// detectZero marks all-zero pages (zero: true) instead of processing them.
	detectZero bool
	// lender is src if it lends its bytes in place (set by run).
	lender viewer
	// pool keeps the chunks of a run that ended well for the next run (a
	// pipeline runs once per window of pfns).
	pool []*chunk
}

// run calls emit for every page of the ranges, in ascending pfn order.
func (p *pipeline) run(ctx context.Context, emit func(pfn uint64, po pageOut) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.lender, _ = p.src.(viewer)
	free := make(chan *chunk, p.inflight)
	for i := 0; i < p.inflight; i++ {
		if i < len(p.pool) {
			free <- p.pool[i]
			continue
		}
		free <- &chunk{
			// in is made when a chunk's pages cannot be read in place
			// (view): from /proc/vmcore, only at a PT_LOAD's partial
			// pages, so most chunks of a capture never need it.
			out:   make([]byte, 0, p.chunkPages*int(p.pageSize)),
			pages: make([]pageOut, 0, p.chunkPages),
		}
	}
	// A run that fails may leave a chunk with the producer as it stops:
	// the next run makes new ones.
	p.pool = nil
	// Make every worker's page function before starting any worker: a
	// failure then leaves no goroutine behind.
	procs := make([]processFunc, p.workers)
	if p.newProcess != nil {
		for w := range procs {
			var err error
			if procs[w], err = p.newProcess(); err != nil {
				return fmt.Errorf("collect: starting worker %d of %d: %w", w+1, p.workers, err)
			}
		}
	}
	jobs := make(chan *chunk)
	done := make(chan *chunk, p.inflight)
	var wg sync.WaitGroup
	for _, proc := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				c.err = p.work(c, proc)
				done <- c
			}
		}()
	}
	// Producer: cut the ranges into chunks. total is the number of chunks,
	// set (before jobs closes) only when every chunk was handed out.
	total := -1
	go func() {
		defer close(jobs)
		seq := 0
		for r := range p.ranges {
			for pfn := r.start; pfn < r.end; {
				n := int(min(uint64(p.chunkPages), r.end-pfn, p.toWindowEnd(r, pfn)))
				var c *chunk
				select {
				case c = <-free:
				case <-ctx.Done():
					return
				}
				c.seq, c.r, c.pfn, c.n, c.err = seq, r, pfn, n, nil
				select {
				case jobs <- c:
				case <-ctx.Done():
					return
				}
				seq++
				pfn += uint64(n)
			}
		}
		total = seq
	}()
	go func() { wg.Wait(); close(done) }()

	// Orderer: emit chunks in sequence.
	pending := map[int]*chunk{}
	next := 0
	var err error
	for c := range done {
		if err != nil {
			c.releaseView()
			continue // drain
		}
		pending[c.seq] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err = c.err; err == nil {
				err = p.emitChunk(ctx, c, emit)
			}
			c.releaseView()
			free <- c
			if err != nil {
				cancel(err)
				break
			}
		}
	}
	for _, c := range pending {
		c.releaseView() // after an error: received, never emitted
	}
	if err == nil && next != total {
		// Stopped before the last chunk without an error of ours: the
		// parent context was cancelled (with or without a cause).
		err = fmt.Errorf("collect: stopped after %d chunks of pages: %w", next, context.Cause(ctx))
	}
	if err == nil {
		// Every chunk is back: keep them for the next run.
		for len(free) > 0 {
			p.pool = append(p.pool, <-free)
		}
	}
	return err
}

// toWindowEnd is the number of pages from pfn to the end of the source's
// mmap window that holds it, if the source lends its windows (view) and a
// window ends on a page boundary there: a chunk cut there is read in place
// rather than copied for straddling two windows. Otherwise it is no limit.
func (p *pipeline) toWindowEnd(r pageRange, pfn uint64) uint64 {
	if p.lender == nil || pfn*p.pageSize < r.load.Paddr {
		return math.MaxUint64
	}
	off := r.fileOffset(pfn * p.pageSize)
	left := vmcore.WindowSize - off%vmcore.WindowSize
	if left%p.pageSize != 0 {
		return math.MaxUint64
	}
	return left / p.pageSize
}

func (p *pipeline) emitChunk(ctx context.Context, c *chunk, emit func(uint64, pageOut) error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	for i, po := range c.pages {
		if err := emit(c.pfn+uint64(i), po); err != nil {
			return err
		}
	}
	return nil
}

func (p *pipeline) work(c *chunk, proc processFunc) error {
	ps := int(p.pageSize)
	in, release, ok := p.view(c.r, c.pfn, c.n)
	if ok {
		c.release = release
	} else {
		if c.in == nil {
			c.in = make([]byte, p.chunkPages*int(p.pageSize))
		}
		in = c.in
		if err := readPages(p.src, c.r, c.pfn, c.n, p.pageSize, in); err != nil {
			return err
		}
	}
	c.pages = c.pages[:0]
	c.out = c.out[:0]
	for i := 0; i < c.n; i++ {
		pfn := c.pfn + uint64(i)
		page := in[i*ps : (i+1)*ps]
		if p.detectZero && isZero(page) {
			c.pages = append(c.pages, pageOut{zero: true, data: page})
			continue
		}
		if proc == nil {
			c.pages = append(c.pages, pageOut{data: page})
			continue
		}
		start := len(c.out)
		out, flags := proc(c.out[start:start:cap(c.out)], page)
		if len(out) > 0 && &out[0] == &page[0] {
			c.pages = append(c.pages, pageOut{data: page, flags: flags})
			continue
		}
		if start+len(out) > cap(c.out) {
			// Cannot happen: a stored form is never larger than the page.
			return fmt.Errorf("collect: page %#x: stored form of %d bytes exceeds the chunk buffer", pfn, len(out))
		}
		c.out = c.out[:start+len(out)]
		if len(out) > 0 && &out[0] != &c.out[start] { // proc wrote into dst (the usual case): no copy
			copy(c.out[start:], out)
		}
		c.pages = append(c.pages, pageOut{data: c.out[start : start+len(out)], flags: flags})
	}
	return nil
}
