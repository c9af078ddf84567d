// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/dump"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/pagecodec"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// collectCmd: ukdump collect [-d LEVEL] [--format F] [--compress C] IN OUT.
// OUT is written as OUT.incomplete and renamed when whole; a failure or a
// signal (c.Ctx cancelled) keeps OUT.incomplete, marked incomplete.
func (c Context) collectCmd(args []string) error {
	fs := c.flags("collect", "[-d LEVEL] [--format kdump|elf|flat] [--compress zstd|zlib|snappy|lzo|none] [-f] [-q] [--sha256] IN OUT")
	level := fs.Int("d", 1, "dump level: page classes to exclude, as makedumpfile -d (0-31: zero 1, cache 2, cache-private 4, user 8, free 16)")
	format := fs.String("format", "kdump", "output format: kdump, elf or flat (flattened, for a pipe; OUT may be -)")
	codec := fs.String("compress", config.DefaultCompression, "page compression of the kdump and flat formats: "+strings.Join(pagecodec.Names, ", "))
	force := fs.Bool("f", false, "overwrite OUT if it exists")
	quiet := fs.Bool("q", false, "no progress")
	hash := fs.Bool("sha256", false, "print the sha256 of the output (a kdump file is read back for it)")
	if err := parseN(fs, args, 2, "collect needs IN and OUT"); err != nil {
		return err
	}
	in, out := fs.Arg(0), fs.Arg(1)
	if *format == collect.FormatELF && c.flagSet(fs, "compress") && *codec != "none" {
		return fmt.Errorf("%w: --compress %s is not possible with --format elf", ErrUsage, *codec)
	}
	if out == "-" && *format != collect.FormatFlat {
		return fmt.Errorf("%w: only --format flat can be written to standard output", ErrUsage)
	}
	src, err := vmcore.OpenFile(in)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	defer src.Close()
	core, err := vmcore.Open(src, src.Size())
	if err != nil {
		return fmt.Errorf("collect: %s: %w", in, err)
	}
	var w io.Writer
	var f *os.File
	inc := out + ".incomplete"
	if out == "-" {
		w = c.Stdout
	} else {
		if !*force {
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("collect: %s exists (use -f to overwrite)", out)
			}
		}
		if f, err = os.OpenFile(inc, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
		defer f.Close()
		w = f
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var last time.Time
	res, err := collect.Collect(ctx, src, core, w, collect.Options{
		Format: *format, Codec: *codec, DumpLevel: *level, NoHash: !*hash,
		Progress: func(p collect.Progress) {
			if !*quiet && (time.Since(last) > 2*time.Second || p.Done == p.Total) {
				last = time.Now()
				fmt.Fprintf(c.Stderr, "ukdump collect: %s\n", p)
			}
		},
	})
	if err == nil && f != nil {
		if err = f.Sync(); err == nil {
			err = f.Close()
		}
		if err == nil {
			err = os.Rename(inc, out)
		}
	}
	if err != nil {
		if f == nil {
			return fmt.Errorf("collect: %s → %s: %w", in, out, err)
		}
		return fmt.Errorf("collect: %s → %s: %w; kept what was written (%s) in %s, marked incomplete", in, out, err, collect.HumanBytes(res.Bytes), inc)
	}
	fmt.Fprintf(c.Stderr, "ukdump collect: wrote %s: %s, %s, dump level %d, %s (%d of %d pages dumped, %d zero) in %.1fs\n",
		out, res.Format, res.Codec, res.DumpLevel, collect.HumanBytes(res.Bytes), res.Pages.Dumped, res.Pages.Total, res.Pages.Zero, res.Duration.Seconds())
	if *hash {
		fmt.Fprintf(c.Stdout, "%s  %s\n", res.SHA256, out)
	}
	return nil
}

func (c Context) flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (c Context) info(args []string) error {
	fs := c.flags("info", "[--json] DUMP")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseN(fs, args, 1, "info needs one DUMP (ELF, kdump-compressed or flattened)"); err != nil {
		return err
	}
	d, err := dump.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	defer d.Close()
	in := d.Describe()
	c.warnIncomplete("info", d)
	if *asJSON {
		e := json.NewEncoder(c.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(in)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "file:      %s (%s)\nformat:    %s", in.File, collect.HumanBytes(in.Size), in.Format)
	if in.Codec != "" {
		fmt.Fprintf(&b, ", %s", in.Codec)
	}
	fmt.Fprintf(&b, "\nkernel:    %s\ncrashed:   %s\npages:     %d in the dump of %d\n", in.KernelRelease, in.CrashTime, in.Dumped, in.Pages)
	if in.Complete {
		b.WriteString("complete:  yes\n")
	} else {
		fmt.Fprintf(&b, "complete:  NO: INCOMPLETE: %s\n", strings.Join(in.Incomplete, "; "))
	}
	if in.Note != "" {
		fmt.Fprintf(&b, "note:      %s\n", in.Note)
	}
	_, err = io.WriteString(c.Stdout, b.String())
	return err
}

// warnIncomplete says on standard error, loudly, that a dump is not whole.
func (c Context) warnIncomplete(cmd string, d *dump.Dump) {
	if !d.Complete() {
		fmt.Fprintf(c.Stderr, "ukdump %s: WARNING: %s is INCOMPLETE: %s; what it holds is still read, but pages past the point where it stopped are missing\n",
			cmd, d.Path, strings.Join(d.Incomplete, "; "))
	}
}

func (c Context) reassemble(args []string) error {
	fs := c.flags("reassemble", "IN OUT")
	if err := parseN(fs, args, 2, "reassemble needs IN (a flattened dump, or - for standard input) and OUT"); err != nil {
		return err
	}
	var r io.Reader
	if fs.Arg(0) == "-" {
		r = os.Stdin
	} else {
		in, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("reassemble: %w", err)
		}
		defer in.Close()
		r = in
	}
	out, err := os.OpenFile(fs.Arg(1), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("reassemble: %w", err)
	}
	if err := kdumpfile.Reassemble(r, out); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && out.Sync() == nil && out.Close() == nil {
			// A stream cut short (a capture that stopped): keep what it
			// holds. Its header says incomplete unless the final header
			// record, written after all the data, arrived.
			return fmt.Errorf("reassemble: %s: %w; kept what the stream holds in %s (see 'ukdump info %s')", fs.Arg(0), err, fs.Arg(1), fs.Arg(1))
		}
		out.Close()
		os.Remove(fs.Arg(1))
		return fmt.Errorf("reassemble: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("reassemble: %w", err)
	}
	fmt.Fprintf(c.Stderr, "ukdump reassemble: wrote %s\n", fs.Arg(1))
	return nil
}

// parseN parses flags followed by exactly n arguments; missing says what they are.
func parseN(fs *flag.FlagSet, args []string, n int, missing string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() != n {
		fs.Usage()
		return fmt.Errorf("%w: %s", ErrUsage, missing)
	}
	return nil
}
