// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command ukdump builds, loads and reports the ukdump capture environment,
// and reads saved dumps.
//
// Synopsis:
//
//	ukdump build -c CONFIG -o IMAGE [--busybox PATH] [--kver VERSION] [--modules-dir DIR] [--module NAME]... [--compress gzip|zstd|xz|none]
//	ukdump load --initrd IMAGE [--kernel PATH] [--append ARGS] [--force]
//	ukdump unload
//	ukdump status
//	ukdump collect [-d LEVEL] [--format kdump|elf|flat] [--compress zstd|zlib|snappy|lzo|none] [-f] [-q] [--sha256] IN OUT
//	ukdump info [--json] DUMP
//	ukdump reassemble IN OUT
//	ukdump dmesg DUMP
//	ukdump version
//
// collect stops on SIGINT or SIGTERM, keeping what it wrote as OUT.incomplete,
// marked incomplete, and exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ukdump/ukdump/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	err := cli.Context{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Ctx: ctx}.Execute()
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "ukdump: %v\n", err)
		os.Exit(1)
	}
}
