// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package collect writes a dump from its source core to a sink: the seam
// between where the crashed kernel's memory comes from (internal/vmcore) and
// where the dump goes (internal/target). It writes the ELF core as it is, an
// ELF core without excluded pages, or the kdump-compressed format (directly,
// or flattened for a stream), classifying and compressing pages on all CPUs.
package collect

import (
	"context"
	"fmt"
	"hash"
	"io"
	"runtime"
	"time"

	"github.com/ukdump/ukdump/internal/dumplevel"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// DefaultChunkSize is how much is read and written at a time: one mmap window
// of /proc/vmcore.
const DefaultChunkSize = vmcore.WindowSize

// Formats this collector writes.
const (
	FormatELF   = "elf"
	FormatKdump = "kdump"
	FormatFlat  = "flat"
)

// Options configure a collection. The zero value writes an ELF copy.
type Options struct {
	// Format is the output format; "" means FormatELF. FormatKdump on a
	// sink that cannot seek is written as FormatFlat (see Collect).
	Format string
	// Codec compresses pages of the kdump and flat formats ("" means zstd).
	Codec string
	// DumpLevel is makedumpfile's -d: page classes to exclude.
	DumpLevel int
	// Workers is how many goroutines classify and compress pages
	// (0: GOMAXPROCS).
	Workers int
	// ChunkSize is the read/write size of the ELF copy; 0 means
	// DefaultChunkSize, or 1 MiB with LowMemory.
	ChunkSize int
	// Progress, if set, is called after every chunk.
	Progress func(Progress)
	// LowMemory makes the pipeline's buffers small (256 KiB chunks, a 256 KiB
	// write cache): for the capture kernel, where every MiB counts.
	LowMemory bool
	// NoHash skips the sha256 of the output (Result.SHA256 stays empty), in
	// every format. Hashing costs a CPU's time on every byte written, and a
	// kdump file is hashed by reading it back after writing (its header and
	// page descriptors are final only after the data): the capture leaves
	// it to the next boot for a dump on a local disk (manifest.FillSHA256).
	NoHash bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// window is the page frames handled at a time; 0 means windowPages.
	// Tests make it small, a multiple of a bitmap block's pfns.
	window uint64
}

// Progress describes a collection under way: Done of Total bytes of the
// source processed.
type Progress struct {
	Done, Total int64
	Elapsed     time.Duration
}

// Rate is the throughput so far in bytes per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// String formats progress for a serial console:
// "412.0 MiB / 1.0 GiB (40%) 83.1 MB/s ETA 7s".
func (p Progress) String() string {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	eta := "?"
	if r := p.Rate(); r > 0 {
		eta = time.Duration(float64(p.Total-p.Done) / r * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s / %s (%.0f%%) %.1f MB/s ETA %s", HumanBytes(p.Done), HumanBytes(p.Total), pct, p.Rate()/1e6, eta)
}

// HumanBytes formats a byte count with a binary unit.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Result describes a finished (or failed) collection.
type Result struct {
	Format    string
	Codec     string
	DumpLevel int
	// Pages counts the source's page frames by fate (kdump and filtered ELF).
	Pages PageCounts
	// Warnings are what the collection could not do as asked (e.g. page
	// classes it could not exclude), for the log and the manifest.
	Warnings []string
	// Bytes is how many bytes were written to the sink.
	Bytes int64
	// SHA256 is the hex digest of the bytes written.
	SHA256   string
	Duration time.Duration
	// Time spent reading the source, hashing and writing to the sink.
	ReadTime, HashTime, WriteTime time.Duration
}

// Collect writes the dump of core (read through src) to w. It plans the
// dump, then writes it. The sink decides one thing: FormatKdump on a sink
// that cannot seek (not an io.WriterAt and io.ReaderAt: a stream) is
// written flattened, and Result.Format says FormatFlat. A sink that must
// know the file's size before its data (target.Sizer) is told it when the
// plan knows it: for the ELF formats. On error, Result says how much was
// written before it.
func Collect(ctx context.Context, src io.ReaderAt, core *vmcore.Core, w io.Writer, o Options) (Result, error) {
	if o.Format == "" {
		o.Format = FormatELF
	}
	if o.Format != FormatELF && o.Codec == "" {
		o.Codec = string(kdumpfile.CodecZstd)
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
		if o.LowMemory {
			o.ChunkSize = 1 << 20
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if err := dumplevel.Check(o.DumpLevel); err != nil {
		return Result{Format: o.Format}, fmt.Errorf("collect: %w", err)
	}
	switch o.Format {
	case FormatELF, FormatKdump, FormatFlat:
	default:
		return Result{Format: o.Format}, fmt.Errorf("collect: unknown format %q (want elf, kdump, flat)", o.Format)
	}
	start := o.Now()
	p, err := newPlan(ctx, src, core, w, o, start)
	if err != nil {
		return p.result(o), err
	}
	if s, ok := w.(interface{ SetSize(int64) error }); ok && p.size >= 0 {
		if err := s.SetSize(p.size); err != nil {
			return p.result(o), fmt.Errorf("collect: %w", err)
		}
	}
	switch {
	case p.copy:
		return p.copyELF(ctx, w, o, start)
	case p.format == FormatELF:
		return p.writeELF(ctx, w, o, start)
	}
	return p.writeKdump(ctx, w, o, start)
}

// MaxSize is the most a dump of core in format can take, when that is known
// before it is written: an ELF dump is at most the core's size (a copy,
// exactly that). The size of a compressed one is known only once written
// (ok false).
func MaxSize(core *vmcore.Core, format string) (size int64, ok bool) {
	if format == "" || format == FormatELF {
		return core.Size, true
	}
	return 0, false
}

// copyELF writes the core as it is, read in large chunks. On a sink it can
// seek in, the ELF header says incomplete until the last byte is durable.
func (p *plan) copyELF(ctx context.Context, w io.Writer, o Options, start time.Time) (Result, error) {
	res := p.result(o)
	h := o.newHash()
	hw := &hashWriter{w: w, h: h}
	mark := newELFMark(w, p.core.Header.Flags)
	buf := make([]byte, o.ChunkSize)
	total := p.size
	for off := int64(0); off < total; {
		if err := ctx.Err(); err != nil {
			return finish(res, h, start, o), fmt.Errorf("collect: stopped at %d of %d bytes: %w", off, total, context.Cause(ctx))
		}
		n := int(min(int64(len(buf)), total-off))
		t0 := o.Now()
		m, err := p.src.ReadAt(buf[:n], off)
		t1 := o.Now()
		res.ReadTime += t1.Sub(t0)
		if m < n {
			return finish(res, h, start, o), fmt.Errorf("collect: read source at %#x (%d bytes): got %d: %w", off, n, m, err)
		}
		before := hw.n
		if off == 0 {
			err = hw.writeHead(buf[:n], mark)
		} else {
			_, err = hw.Write(buf[:n])
		}
		t2 := o.Now()
		res.WriteTime += t2.Sub(t1)
		res.Bytes += hw.n - before
		if err != nil {
			return finish(res, h, start, o), fmt.Errorf("collect: write at %d: %w", off, err)
		}
		off += int64(n)
		if o.Progress != nil {
			o.Progress(Progress{Done: off, Total: total, Elapsed: o.Now().Sub(start)})
		}
	}
	if err := mark.clear(); err != nil {
		return finish(res, h, start, o), fmt.Errorf("collect: %w", err)
	}
	return finish(res, h, start, o), nil
}

func finish(res Result, h hash.Hash, start time.Time, o Options) Result {
	res.SHA256 = sumHex(h)
	res.Duration = o.Now().Sub(start)
	return res
}
