// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ukdump/ukdump/internal/dumplevel"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/memmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// PageCounts counts the source's page frames by what happened to them.
type PageCounts struct {
	// Total page frames of RAM in the source.
	Total uint64 `json:"total"`
	// Dumped pages have data in the dump (zero pages included when they
	// share the one zero page of the kdump format).
	Dumped uint64 `json:"dumped"`
	// Zero pages were all zeros.
	Zero uint64 `json:"zero"`
	// Excluded pages are left out of the dump.
	Excluded uint64 `json:"excluded"`
}

// chunkPages is the pipeline's unit of work: 1 MiB of 4 KiB pages (256 KiB
// with LowMemory).
func (o Options) chunkPages() int {
	if o.LowMemory {
		return 64
	}
	return 256
}

// hashWriter hashes and counts what passes through it.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	if hw.h != nil {
		hw.h.Write(p[:n])
	}
	hw.n += int64(n)
	return n, err
}

// newHash is the hash of the output: sha256, or nil with NoHash.
func (o Options) newHash() hash.Hash {
	if o.NoHash {
		return nil
	}
	return sha256.New()
}

// sumHex is h's hex digest; "" for no hash (NoHash).
func sumHex(h hash.Hash) string {
	if h == nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sizeWriterAt records the end of the furthest write.
type sizeWriterAt struct {
	w    io.WriterAt
	size int64
}

func (s *sizeWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.w.WriteAt(p, off)
	s.size = max(s.size, off+int64(n))
	return n, err
}

func pageSize(c *vmcore.Core) uint64 {
	if c.Info != nil {
		if ps := c.Info.PageSize(); ps >= 512 && ps&(ps-1) == 0 {
			return uint64(ps)
		}
	}
	return vmcore.DefaultPageSize
}

// writeKdump writes the kdump-compressed format p planned: to w directly
// (FormatKdump: a file, the sha256 read back from it), or flattened as a
// stream (FormatFlat).
func (p *plan) writeKdump(ctx context.Context, w io.Writer, o Options, start time.Time) (Result, error) {
	res := p.result(o)
	ps := p.pageSize
	kp := kdumpfile.CoreParams(p.core)
	kp.PageSize, kp.MaxPFN = int(ps), p.maxPFN
	kp.DumpLevel, kp.Codec = o.DumpLevel, kdumpfile.Codec(o.Codec)
	if o.LowMemory {
		kp.BufferSize = 256 << 10
	}
	if kp.CrashTime.IsZero() {
		kp.CrashTime = o.Now()
	}
	if s, ok := w.(interface{ Sync() error }); ok {
		// The header is marked complete only after the data is durable.
		kp.Sync = s.Sync
	}

	hw := &hashWriter{w: w, h: o.newHash()}
	var sink *sizeWriterAt
	var flat *kdumpfile.FlatWriter
	if p.format == FormatFlat {
		flat = kdumpfile.NewFlatWriter(hw)
		sink = &sizeWriterAt{w: flat}
	} else {
		sink = &sizeWriterAt{w: w.(io.WriterAt)}
	}
	kw, err := kdumpfile.NewWindowWriter(sink, kp)
	if err != nil {
		return res, fmt.Errorf("collect: %w", err)
	}
	pl := &pipeline{
		src: p.src, pageSize: ps, chunkPages: o.chunkPages(),
		workers: o.Workers, inflight: 2 * o.Workers,
		detectZero: o.DumpLevel&dumplevel.Zero != 0,
		newProcess: func() (processFunc, error) {
			c, err := kdumpfile.NewCompressor(kdumpfile.Codec(o.Codec), int(ps))
			if err != nil {
				return nil, err
			}
			return c.Compress, nil
		},
	}
	var done uint64
	emit := func(pfn uint64, po pageOut) error {
		if po.zero {
			res.Pages.Zero++
		}
		res.Pages.Dumped++
		done++
		if err := kw.WritePage(pfn, po.data, po.flags, po.zero); err != nil {
			return err
		}
		if o.Progress != nil && done%uint64(o.chunkPages()) == 0 {
			o.Progress(Progress{Done: int64(done * ps), Total: p.total, Elapsed: o.Now().Sub(start)})
		}
		return nil
	}
	// After the header, in a file: the present pages as both bitmaps (from
	// the PT_LOADs alone), so that a dump cut short reads as incomplete
	// where it stopped. (Even when ctx is done: a file of a header alone is
	// not a dump at all, and this reads nothing of the source.) Then the
	// walk that counts the dumpable pages writes the real bitmaps over
	// them, and window by window each is read back for its pages: mem_map
	// is walked once.
	//
	// In a stream, nothing is written twice (crash reads a flattened file
	// by looking records up by offset, and would find either of two records
	// for one offset) or read back: the walk that counts keeps only counts,
	// and window by window a second walk writes the window's bitmaps, then
	// its pages.
	file, _ := w.(io.ReaderAt)
	if flat == nil {
		err = p.forWindows(context.Background(), nil, func(w *window, _ memmap.Counts) error {
			return kw.WriteProvisional(w.present)
		})
	}
	if err == nil {
		err = p.countKdump(ctx, func(w *window) error {
			if flat == nil {
				return kw.WriteBitmaps(w.present, w.dumpable)
			}
			return nil
		})
		res.Pages, res.Warnings = p.pages, p.warnings
	}
	if err == nil {
		err = kw.SetDumpable(p.numDumpable)
	}
	var ex *memmap.Excluder
	if err == nil && flat != nil {
		ex, err = p.excluder()
	}
	if err == nil {
		// In a file, forWindows only cuts the windows (ex is nil) and
		// ReadWindow replaces their dumpable bitmaps with what was written.
		err = p.forWindows(ctx, ex, func(w *window, _ memmap.Counts) error {
			var err error
			if flat == nil {
				err = kw.ReadWindow(file, w.dumpable)
			} else {
				err = kw.WriteBitmaps(w.present, w.dumpable)
			}
			if err != nil {
				return err
			}
			pl.ranges = runsOf(w.dumpable, p.ranges, w.start, w.end)
			return pl.run(ctx, emit)
		})
	}
	if err == nil {
		err = kw.Close()
	} else if aerr := kw.Abort(err); aerr != nil {
		err = fmt.Errorf("%w (and marking the dump incomplete failed: %v)", err, aerr)
	}
	if flat != nil {
		if cerr := flat.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	res.Duration = o.Now().Sub(start)
	if o.Progress != nil && err == nil {
		o.Progress(Progress{Done: p.total, Total: p.total, Elapsed: res.Duration})
	}
	if flat != nil {
		res.Bytes, res.SHA256 = hw.n, sumHex(hw.h)
	} else if res.Bytes = sink.size; !o.NoHash {
		t := o.Now()
		sum, herr := hashFile(w.(io.ReaderAt), sink.size, o.ChunkSize)
		res.HashTime = o.Now().Sub(t)
		res.SHA256 = sum
		if herr != nil && err == nil {
			err = herr
		}
	}
	if err != nil {
		return res, fmt.Errorf("collect: %w", err)
	}
	return res, nil
}

// hashFile reads back what was written and hashes it, in reads of bufSize
// bytes (the capture kernel reads it back from the disk: few large reads
// beat many small ones).
func hashFile(r io.ReaderAt, size int64, bufSize int) (string, error) {
	// Two buffers of half the size: the next block is read while this one
	// is hashed, so the disk (or the hypervisor's I/O thread) works while
	// the CPU hashes, in the memory one buffer took. On a 64 GiB QEMU
	// guest's 216 MiB dump, reading and hashing in turn took 9.9 s.
	type block struct {
		b   []byte
		err error
	}
	full := make(chan block, 1)
	empty := make(chan []byte, 2)
	empty <- make([]byte, max(bufSize/2, 4096))
	empty <- make([]byte, max(bufSize/2, 4096))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for off := int64(0); off < size; {
			var b []byte
			select {
			case b = <-empty:
			case <-stop:
				return
			}
			n, err := r.ReadAt(b[:min(int64(len(b)), size-off)], off)
			if err == io.EOF && off+int64(n) == size {
				err = nil
			}
			select {
			case full <- block{b[:n], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
			off += int64(n)
		}
	}()
	h := sha256.New()
	var done int64
	for blk := range full {
		if blk.err != nil {
			return "", fmt.Errorf("collect: read back the dump for its sha256 at %#x: %w", done, blk.err)
		}
		h.Write(blk.b)
		done += int64(len(blk.b))
		empty <- blk.b[:cap(blk.b)]
	}
	if done != size {
		return "", fmt.Errorf("collect: read back the dump for its sha256: %d of %d bytes", done, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
