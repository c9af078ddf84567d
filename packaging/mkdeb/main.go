// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command mkdeb builds ukdump's Debian package (make deb).
//
// Synopsis:
//
//	mkdeb [-root DIR] [-bin DIR] [-out DIR] [-version VERSION] [-maintainer "NAME <EMAIL>"]
//
// Description:
//
//	mkdeb packs the binaries of make all (ukdump, bb, bb-disk) with the
//	units, the default config, the kernel hooks and the maintainer scripts
//	into OUT/ukdump_VERSION_amd64.deb with dpkg-deb, and prints its path.
//	SOURCE_DATE_EPOCH sets every file's time and the changelog's date.
//	See packaging/README.md.
//
// Options:
//
//	-root:       the repository's top directory (default .)
//	-bin:        where ukdump, bb and bb-disk are (default ROOT/out)
//	-out:        where the .deb is written (default ROOT/out)
//	-version:    the Debian version (default internal/version's, revision 1)
//	-maintainer: the Maintainer field and changelog signer
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/ukdump/ukdump/packaging"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		log.Fatalf("mkdeb: %v", err)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o packaging.Options
	fs.StringVar(&o.Root, "root", ".", "the repository's top directory")
	fs.StringVar(&o.BinDir, "bin", "", "where ukdump, bb and bb-disk are (default ROOT/out)")
	fs.StringVar(&o.OutDir, "out", "", "where the .deb is written (default ROOT/out)")
	fs.StringVar(&o.Version, "version", "", "the Debian version (default "+packaging.DefaultVersion()+")")
	fs.StringVar(&o.Maintainer, "maintainer", "", "the Maintainer field (default "+packaging.DefaultMaintainer+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	l := slog.New(slog.NewTextHandler(stderr, nil))
	out, err := packaging.Build(context.Background(), l, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, out)
	return nil
}
