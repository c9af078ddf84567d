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
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// collectCmd: ukdump collect [-d LEVEL] [--format F] [--compress C] IN OUT
func (c Context) collectCmd(args []string) error {
	fs := c.flags("collect", "[-d LEVEL] [--format kdump|elf|flat] [--compress zstd|zlib|snappy|lzo|none] IN OUT")
	level := fs.Int("d", 1, "dump level: page classes to exclude (makedumpfile -d; this version: 0 or 1)")
	format := fs.String("format", "kdump", "output format: kdump, elf or flat (flattened, for a pipe; OUT may be -)")
	codec := fs.String("compress", "zstd", "page compression of the kdump and flat formats")
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
	if out == "-" {
		if *format != collect.FormatFlat {
			return fmt.Errorf("%w: only --format flat can be written to standard output", ErrUsage)
		}
		w = c.Stdout
	} else {
		flags := os.O_RDWR | os.O_CREATE | os.O_EXCL
		if *force {
			flags = os.O_RDWR | os.O_CREATE | os.O_TRUNC
		}
		if f, err = os.OpenFile(out, flags, 0o600); err != nil {
			return fmt.Errorf("collect: %w (use -f to overwrite)", err)
		}
		defer f.Close()
		w = f
	}
	var last time.Time
	res, err := collect.Collect(context.Background(), src, core, w, collect.Options{
		Format: *format, Codec: *codec, DumpLevel: *level, NoHash: !*hash,
		Progress: func(p collect.Progress) {
			if !*quiet && (time.Since(last) > 2*time.Second || p.Done == p.Total) {
				last = time.Now()
				fmt.Fprintf(c.Stderr, "ukdump collect: %s\n", p)
			}
		},
	})
	if err == nil && f != nil {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("collect: %s → %s: %w", in, out, err)
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

// Info describes a dump file for `ukdump info`.
type Info struct {
	File          string `json:"file"`
	Format        string `json:"format"`
	Codec         string `json:"codec,omitempty"`
	KernelRelease string `json:"kernel_release,omitempty"`
	CrashTime     string `json:"crash_time,omitempty"`
	PageSize      int    `json:"page_size,omitempty"`
	// Pages of RAM and pages with data in the dump.
	Pages    uint64 `json:"pages"`
	Dumped   uint64 `json:"dumped"`
	Size     int64  `json:"size"`
	Complete bool   `json:"complete"`
	Note     string `json:"note,omitempty"`
}

// DescribeDump reads a dump's headers.
func DescribeDump(path string) (Info, error) {
	in := Info{File: path}
	f, err := os.Open(path)
	if err != nil {
		return in, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return in, err
	}
	in.Size = fi.Size()
	if kdumpfile.IsFlattened(f) {
		in.Format = "flat"
		in.Note = "a flattened stream: rebuild the file with 'ukdump reassemble IN OUT' (or makedumpfile -R OUT < IN)"
		return in, nil
	}
	if kf, err := kdumpfile.Open(f); err == nil {
		in.Format, in.Codec, in.PageSize = "kdump", string(kf.Codec()), kf.PageSize()
		in.Pages, in.Dumped = kf.Present().Count(), kf.NumDumpable()
		in.Complete = !kf.Incomplete()
		info := vmcore.ParseInfo(kf.VMCoreInfo())
		in.KernelRelease = info.OSRelease()
		if h := kf.Header(); !h.Time().IsZero() {
			t := h.Time()
			in.CrashTime = t.UTC().Format(time.RFC3339)
		}
		return in, nil
	} else if !errors.Is(err, kdumpfile.ErrFormat) {
		return in, err
	}
	core, err := vmcore.Open(f, in.Size)
	if err != nil {
		return in, fmt.Errorf("%s is neither a kdump-compressed file nor an ELF core: %w", path, err)
	}
	in.Format, in.Complete = "elf", core.Header.Flags&1 == 0
	for _, l := range core.Loads {
		in.Dumped += l.Filesz / 4096
		in.Pages += l.Memsz / 4096
	}
	if core.Info != nil {
		in.KernelRelease, in.PageSize = core.Info.OSRelease(), int(core.Info.PageSize())
		if t, ok := core.Info.CrashTime(); ok {
			in.CrashTime = t.Format(time.RFC3339)
		}
	}
	return in, nil
}

func (c Context) info(args []string) error {
	fs := c.flags("info", "[--json] DUMP")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseN(fs, args, 1, "info needs one DUMP"); err != nil {
		return err
	}
	in, err := DescribeDump(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
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
	fmt.Fprintf(&b, "\nkernel:    %s\ncrashed:   %s\npages:     %d in the dump of %d\ncomplete:  %v\n", in.KernelRelease, in.CrashTime, in.Dumped, in.Pages, in.Complete)
	if in.Note != "" {
		fmt.Fprintf(&b, "note:      %s\n", in.Note)
	}
	_, err = io.WriteString(c.Stdout, b.String())
	return err
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
