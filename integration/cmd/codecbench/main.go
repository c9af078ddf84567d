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
//	-reps N       passes per codec, the best counts (default 3)
//	-codecs LIST  ukdump's codecs (default snappy,lzo,zstd,zlib)
//	-tmp DIR      where the file of pages goes (default /dev/shm)
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/ukdump/ukdump/integration/internal/codecbench"
	"github.com/ukdump/ukdump/internal/kdumpfile"
)

func main() {
	fs := flag.NewFlagSet("codecbench", flag.ExitOnError)
	helper := fs.String("helper", "", "the compiled scripts/codecs.c")
	reps := fs.Int("reps", 3, "passes per codec, the best counts")
	codecs := fs.String("codecs", "snappy,lzo,zstd,zlib", "ukdump's codecs")
	tmp := fs.String("tmp", "/dev/shm", "where the file of pages goes")
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 || *helper == "" {
		log.Fatalf("codecbench: usage: codecbench -helper BIN [-reps N] [-codecs LIST] DUMP")
	}
	f, err := os.CreateTemp(*tmp, "codecbench-pages.")
	if err != nil {
		log.Fatalf("codecbench: %v", err)
	}
	defer os.Remove(f.Name())
	n, pageSize, err := codecbench.Pages(fs.Arg(0), f)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		os.Remove(f.Name())
		log.Fatalf("codecbench: %v", err)
	}
	pages, err := os.ReadFile(f.Name())
	if err != nil {
		os.Remove(f.Name())
		log.Fatalf("codecbench: %v", err)
	}
	rs, err := codecbench.Incumbent(*helper, f.Name(), pageSize, *reps)
	if err != nil {
		os.Remove(f.Name())
		log.Fatalf("codecbench: %v", err)
	}
	base := rs[0]
	for _, c := range strings.Split(*codecs, ",") {
		r, err := codecbench.Ours(kdumpfile.Codec(c), pages, pageSize, *reps)
		if err != nil {
			os.Remove(f.Name())
			log.Fatalf("codecbench: %v", err)
		}
		rs = append(rs, r)
	}
	fmt.Printf("codecbench: %s: %d non-zero pages of %d bytes (%.1f MB), best of %d passes\n", fs.Arg(0), n, pageSize, float64(len(pages))/1e6, *reps)
	codecbench.Table(os.Stdout, int64(len(pages)), base, rs)
}
