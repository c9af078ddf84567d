// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package codecbench times the page codecs of ukdump's kdump writer beside
// the libraries makedumpfile calls (liblzo2's lzo1x_1_compress, zlib's
// compress2 at Z_BEST_SPEED), page by page, on the pages of a real dump:
// the figures behind the choice of the default codec (docs/design.md).
//
// The pages come from a kdump-compressed file (any codec: the reader
// decompresses them), so that the set is the one a dump at that level
// holds: the kernel pages of a dump level 31 capture, the struct pages of a
// big machine's. The incumbent's side is a small C program
// (scripts/codecs.c) that bench.sh compiles against the system's
// liblzo2 and zlib, the libraries Debian's makedumpfile links: both sides
// read the same file of pages, and the same rule stores a page raw when its
// stream is not smaller.
package codecbench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/kdumpfile"
)

// Pages writes to w the non-zero pages of the kdump-compressed file at
// path, one after another, and returns their count and size.
func Pages(path string, w io.Writer) (n int, pageSize int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("codecbench: %w", err)
	}
	defer f.Close()
	k, err := kdumpfile.Open(f)
	if err != nil {
		return 0, 0, fmt.Errorf("codecbench: %s: %w", path, err)
	}
	defer k.Close()
	pageSize = k.PageSize()
	page := make([]byte, pageSize)
	zero := make([]byte, pageSize)
	bw := bufio.NewWriterSize(w, 1<<20)
	dumpable := k.Dumpable()
	for pfn, ok := dumpable.NextSet(0); ok; pfn, ok = dumpable.NextSet(pfn + 1) {
		if err := k.ReadPage(pfn, page); err != nil {
			return n, pageSize, fmt.Errorf("codecbench: %s: pfn %#x: %w", path, pfn, err)
		}
		if bytes.Equal(page, zero) {
			continue
		}
		if _, err := bw.Write(page); err != nil {
			return n, pageSize, err
		}
		n++
	}
	return n, pageSize, bw.Flush()
}

// Result is one codec's pass over the pages: the best time of the passes
// and the bytes stored (a page whose stream is not smaller counts as raw).
type Result struct {
	Name  string
	Time  time.Duration
	Bytes int64
	Raw   int // pages stored raw
}

// MBps is the input's throughput in MB/s.
func (r Result) MBps(input int64) float64 { return float64(input) / 1e6 / r.Time.Seconds() }

// Ours compresses every page of pages with codec once: one pass, which
// Best keeps if it is the codec's fastest.
func Ours(codec kdumpfile.Codec, pages []byte, pageSize int) (Result, error) {
	c, err := kdumpfile.NewCompressor(codec, pageSize)
	if err != nil {
		return Result{}, err
	}
	r := Result{Name: "ukdump " + string(codec)}
	dst := make([]byte, 0, 2*pageSize)
	start := time.Now()
	for off := 0; off+pageSize <= len(pages); off += pageSize {
		out, flags := c.Compress(dst, pages[off:off+pageSize])
		if flags == 0 {
			r.Raw++
		} else {
			dst = out[:0]
		}
		r.Bytes += int64(len(out))
	}
	r.Time = time.Since(start)
	return r, nil
}

// Incumbent runs the compiled scripts/codecs.c (helper) on the file of
// pages, one pass of each of its codecs, and parses its lines: "NAME
// SECONDS BYTES RAW".
func Incumbent(helper, pagesFile string, pageSize int) ([]Result, error) {
	out, err := exec.Command(helper, pagesFile, strconv.Itoa(pageSize), "1").Output()
	if err != nil {
		return nil, fmt.Errorf("codecbench: %s: %w", helper, err)
	}
	return parseIncumbent(out)
}

func parseIncumbent(out []byte) ([]Result, error) {
	var rs []Result
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("codecbench: helper line %q: want NAME SECONDS BYTES RAW", line)
		}
		secs, err1 := strconv.ParseFloat(f[1], 64)
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		raw, err3 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil || secs <= 0 {
			return nil, fmt.Errorf("codecbench: helper line %q: want NAME SECONDS BYTES RAW", line)
		}
		rs = append(rs, Result{Name: f[0], Time: time.Duration(secs * float64(time.Second)), Bytes: size, Raw: raw})
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("codecbench: the helper printed nothing")
	}
	return rs, nil
}

// Best merges a round of passes into best (the rounds so far, in the same
// order): each codec keeps its fastest pass. Rounds interleave the codecs,
// so that a noisy neighbour on the host slows each of them alike, rather
// than whichever ran in its minutes.
func Best(best, round []Result) ([]Result, error) {
	if best == nil {
		return append([]Result(nil), round...), nil
	}
	if len(round) != len(best) {
		return nil, fmt.Errorf("codecbench: a round of %d results after rounds of %d", len(round), len(best))
	}
	for i, r := range round {
		switch {
		case r.Name != best[i].Name:
			return nil, fmt.Errorf("codecbench: result %d of a round is %s, want %s", i, r.Name, best[i].Name)
		case r.Time < best[i].Time:
			best[i] = r
		}
	}
	return best, nil
}

// Table prints the results side by side, each against base (the first of
// the incumbent's, liblzo2, as makedumpfile -l): throughput and output
// size, and their ratios.
func Table(w io.Writer, input int64, base Result, rs []Result) {
	fmt.Fprintf(w, "base: %s\n", base.Name)
	fmt.Fprintf(w, "%-18s %7s %12s %10s %14s %13s\n", "", "MB/s", "output (MB)", "raw pages", "speed vs base", "size vs base")
	for _, r := range rs {
		fmt.Fprintf(w, "%-18s %7.0f %12.1f %10d %13.2fx %12.3fx\n", r.Name, r.MBps(input), float64(r.Bytes)/1e6, r.Raw,
			base.Time.Seconds()/r.Time.Seconds(), float64(r.Bytes)/float64(base.Bytes))
	}
}
