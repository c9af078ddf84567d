// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command codecbench times ukdump's page codecs beside makedumpfile's
// libraries, page by page, on one dump's pages, for make bench
// (integration/internal/codecbench).
//
// Synopsis:
//
//	go run ./integration/cmd/codecbench -helper BIN [flags] DUMP
//
// Description:
//
//	DUMP is a kdump-compressed file; its non-zero pages are the input of
//	every codec. BIN is scripts/codecs.c compiled
//	against the system's liblzo2 and zlib. Run it pinned to one CPU
//	(taskset -c 0): it prints one row per codec with MB/s, output size, raw
//	pages and the ratios against liblzo2's lzo1x_1_compress, the codec of
//	makedumpfile -l.
//
// Options:
//
//	-helper BIN   the compiled scripts/codecs.c
//	-reps N       rounds, each one pass of every codec in turn; each
//	              codec's best counts (default 3)
//	-codecs LIST  ukdump's codecs (default: the default codec, then the
//	              others of pagecodec.Names but none)
//	-tmp DIR      where the file of pages goes (default /dev/shm)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/ukdump/ukdump/integration/internal/codecbench"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/pagecodec"
)

func main() {
	fs := flag.NewFlagSet("codecbench", flag.ExitOnError)
	helper := fs.String("helper", "", "the compiled scripts/codecs.c")
	reps := fs.Int("reps", 3, "rounds of one pass of every codec; each codec's best counts")
	codecs := fs.String("codecs", strings.Join(defaultCodecs(), ","), "ukdump's codecs")
	tmp := fs.String("tmp", "/dev/shm", "where the file of pages goes")
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 || *helper == "" {
		log.Fatalf("codecbench: usage: codecbench -helper BIN [-reps N] [-codecs LIST] DUMP")
	}
	if err := run(fs.Arg(0), *helper, *tmp, strings.Split(*codecs, ","), *reps); err != nil {
		log.Fatal(err) // the codecbench package's errors name it; run's own say "codecbench:"
	}
}

// run times the codecs on dump's pages: the helper reads them from a file
// in tmp, ours from memory (the same bytes, written to both at once).
func run(dump, helper, tmp string, codecs []string, reps int) error {
	for _, c := range codecs { // before minutes of the helper's passes
		if _, err := kdumpfile.NewCompressor(kdumpfile.Codec(c), 4096); err != nil {
			return fmt.Errorf("codecbench: -codecs: %w", err)
		}
	}
	f, err := os.CreateTemp(tmp, "codecbench-pages.")
	if err != nil {
		return fmt.Errorf("codecbench: %w", err)
	}
	defer os.Remove(f.Name())
	var pages bytes.Buffer
	n, pageSize, err := codecbench.Pages(dump, io.MultiWriter(f, &pages))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("codecbench: %w", cerr)
	}
	if err != nil {
		return err
	}
	// Round by round, each codec one pass (the helper's, then each of
	// ours), rather than each codec's passes in a row.
	var rs []codecbench.Result
	for range max(reps, 1) {
		round, err := codecbench.Incumbent(helper, f.Name(), pageSize)
		if err != nil {
			return err
		}
		for _, c := range codecs {
			r, err := codecbench.Ours(kdumpfile.Codec(c), pages.Bytes(), pageSize)
			if err != nil {
				return fmt.Errorf("codecbench: %w", err)
			}
			round = append(round, r)
		}
		if rs, err = codecbench.Best(rs, round); err != nil {
			return err
		}
	}
	base := rs[0]
	fmt.Printf("codecbench: %s: %d non-zero pages of %d bytes (%.1f MB), best of %d rounds\n", dump, n, pageSize, float64(pages.Len())/1e6, reps)
	codecbench.Table(os.Stdout, int64(pages.Len()), base, rs)
	return nil
}

// defaultCodecs is the default codec first, then the others that compress.
func defaultCodecs() []string {
	cs := []string{config.DefaultCompression}
	for _, c := range pagecodec.Names {
		if c != pagecodec.None && c != config.DefaultCompression {
			cs = append(cs, c)
		}
	}
	return cs
}
