// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// vmcorePath is the ELF core the QEMU end-to-end run saved (make e2e): a
// 1 GiB Debian 6.1 guest's /proc/vmcore.
var vmcorePath = filepath.Join("..", "..", "out", "e2e", "dump", "vmcore")

// python is the interpreter with Debian's python3-libkdumpfile.
const python = "/usr/bin/python3"

// needTools fails the test if an oracle is missing.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"crash", "makedumpfile", python} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (%v): run scripts/deps.sh", tool, err)
		}
	}
	if out, err := exec.Command(python, "-c", "import kdumpfile").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import kdumpfile (%v: %s): run scripts/deps.sh (python3-libkdumpfile)", python, err, out)
	}
}

// elfCore is the e2e ELF core with what a kdump writer needs from it.
type elfCore struct {
	path     string
	core     *vmcore.Core
	pageSize int
	present  *bitmap.Bitmap
	loads    []vmcore.Phdr // sorted by p_paddr
}

func openELF(t *testing.T) *elfCore { t.Helper(); return openELFAt(t, vmcorePath) }

func openELFAt(t *testing.T, vmcorePath string) *elfCore {
	t.Helper()
	if _, err := os.Stat(vmcorePath); err != nil {
		t.Fatalf("the e2e vmcore is missing (%v): run make e2e first", err)
	}
	f, err := vmcore.OpenFile(vmcorePath)
	if err != nil {
		t.Fatalf("vmcore.OpenFile(%s) = %v", vmcorePath, err)
	}
	defer f.Close()
	c, err := vmcore.Open(f, f.Size())
	if err != nil {
		t.Fatalf("vmcore.Open(%s) = %v", vmcorePath, err)
	}
	e := &elfCore{path: vmcorePath, core: c, pageSize: 4096}
	if c.Info != nil && c.Info.PageSize() > 0 {
		e.pageSize = int(c.Info.PageSize())
	}
	ps := uint64(e.pageSize)
	var maxPFN uint64
	for _, p := range c.Loads {
		maxPFN = max(maxPFN, (p.Paddr+p.Memsz+ps-1)/ps)
	}
	// RAM: each PT_LOAD's pfns, both ends rounded down (research 1.4).
	e.present = bitmap.New(maxPFN)
	for _, p := range c.Loads {
		e.present.SetRange(p.Paddr/ps, (p.Paddr+p.Memsz)/ps)
	}
	e.loads = append([]vmcore.Phdr(nil), c.Loads...)
	sort.Slice(e.loads, func(i, j int) bool { return e.loads[i].Paddr < e.loads[j].Paddr })
	return e
}

// fileOffset is where pfn's page is in the ELF file (a PT_LOAD covering it).
func (e *elfCore) fileOffset(pfn uint64) (int64, bool) {
	addr := pfn * uint64(e.pageSize)
	for _, p := range e.loads {
		if addr >= p.Paddr && addr+uint64(e.pageSize) <= p.Paddr+p.Filesz {
			return int64(p.Offset + addr - p.Paddr), true
		}
	}
	return 0, false
}

// dumpStats describe one kdump file written from the core.
type dumpStats struct {
	pages, zero, raw, compressed int
	size                         int64
	elapsed                      time.Duration
}

func (s dumpStats) String() string {
	return fmt.Sprintf("%d pages (%d zero, %d raw, %d compressed), %.1f MiB in %v",
		s.pages, s.zero, s.raw, s.compressed, float64(s.size)/(1<<20), s.elapsed.Round(time.Millisecond))
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// writeKdump writes the kdump-compressed dump of the pages set in dumpable
// to w, as the capture pipeline does (one goroutine here): read each page
// from the PT_LOAD that covers it, detect zero pages (dump level bit 1),
// compress, write in pfn order. A write error aborts the dump (marking it
// incomplete) and is returned.
func (e *elfCore) writeKdump(w io.WriterAt, codec kdumpfile.Codec, level int, dumpable *bitmap.Bitmap) (dumpStats, error) {
	start := time.Now()
	var st dumpStats
	src, err := vmcore.OpenFile(e.path) // its own mmap window
	if err != nil {
		return st, err
	}
	defer src.Close()
	p := kdumpfile.CoreParams(e.core)
	p.DumpLevel, p.Codec = level, codec
	wr, err := kdumpfile.NewWriter(w, p, e.present, dumpable)
	if err != nil {
		return st, err
	}
	c, err := kdumpfile.NewCompressor(codec, e.pageSize)
	if err != nil {
		return st, err
	}
	page := make([]byte, e.pageSize)
	var dst []byte
	for pfn, ok := dumpable.NextSet(0); ok; pfn, ok = dumpable.NextSet(pfn + 1) {
		off, ok := e.fileOffset(pfn)
		if !ok {
			// The partial first page of a PT_LOAD: what the file has.
			clear(page)
		} else if _, err := src.ReadAt(page, off); err != nil {
			return st, errors.Join(fmt.Errorf("reading pfn %#x at %#x: %w", pfn, off, err), wr.Abort(err))
		}
		st.pages++
		zero := level&1 != 0 && isZero(page)
		var out []byte
		var flags uint32
		switch {
		case zero:
			st.zero++
		default:
			out, flags = c.Compress(dst, page)
			if flags != 0 {
				dst = out
				st.compressed++
			} else {
				st.raw++
			}
		}
		if err := wr.WritePage(pfn, out, flags, zero); err != nil {
			return st, errors.Join(err, wr.Abort(err))
		}
	}
	if err := wr.Close(); err != nil {
		return st, err
	}
	st.size = wr.Size()
	st.elapsed = time.Since(start)
	return st, nil
}

// writeKdumpFile writes the dump to a new file at path.
func (e *elfCore) writeKdumpFile(t *testing.T, path string, codec kdumpfile.Codec, level int, dumpable *bitmap.Bitmap) dumpStats {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := e.writeKdump(f, codec, level, dumpable)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	t.Logf("ours %s -d %d: %v", codec, level, st)
	return st
}

// fullFile is a file on a "disk" that fills up after quota bytes: a write
// reaching past quota writes what fits and fails with ENOSPC; writes below
// it (the header rewrite) still work, as on a full file system.
type fullFile struct {
	*os.File
	quota int64
}

func (f fullFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.quota {
		return f.File.WriteAt(p, off)
	}
	n := 0
	if off < f.quota {
		var err error
		if n, err = f.File.WriteAt(p[:f.quota-off], off); err != nil {
			return n, err
		}
	}
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// run runs a tool and returns its standard output; it fails the test if the
// tool fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

var timings sync.Map // command line → duration, for the log

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	timings.Store(name+" "+strings.Join(args, " "), time.Since(start))
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// osrelease is what crash --osrelease prints for a dump (no vmlinux needed).
func osrelease(t *testing.T, dump string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "crash", "--osrelease", dump))
}

// openKdump opens a kdump file with our reader.
func openKdump(t *testing.T, path string) (*kdumpfile.File, func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := kdumpfile.Open(f)
	if err != nil {
		f.Close()
		t.Fatalf("kdumpfile.Open(%s) = %v", path, err)
	}
	return kf, func() { kf.Close(); f.Close() }
}

// comparePages reads every dumpable page of a kdump file with our reader and
// compares it with the ELF; excluded pfns must give ErrExcluded.
func (e *elfCore) comparePages(t *testing.T, path string) {
	t.Helper()
	kf, done := openKdump(t, path)
	defer done()
	src, err := vmcore.OpenFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := make([]byte, e.pageSize)
	want := make([]byte, e.pageSize)
	n := 0
	for pfn, ok := e.present.NextSet(0); ok; pfn, ok = e.present.NextSet(pfn + 1) {
		err := kf.ReadPage(pfn, got)
		if !kf.Dumpable().Get(pfn) {
			if !errors.Is(err, kdumpfile.ErrExcluded) {
				t.Fatalf("%s: ReadPage(%#x) = %v, want ErrExcluded", path, pfn, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: ReadPage(%#x) = %v", path, pfn, err)
		}
		off, ok := e.fileOffset(pfn)
		if !ok {
			clear(want)
		} else if _, err := src.ReadAt(want, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: pfn %#x differs from the ELF", path, pfn)
		}
		n++
	}
	t.Logf("%s: %d pages equal to the ELF's", filepath.Base(path), n)
}

// runStdin runs a tool with stdin from in.
func runStdin(in io.Reader, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = in
	start := time.Now()
	out, err := cmd.CombinedOutput()
	timings.Store(name+" "+strings.Join(args, " "), time.Since(start))
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// collectFile writes the kdump file with the collector (collect.Collect, as
// the capture and `ukdump collect` do), at dump level 1.
func (e *elfCore) collectFile(t *testing.T, path string, codec kdumpfile.Codec) dumpStats {
	t.Helper()
	return e.collectFileOpts(t, path, collect.Options{Format: collect.FormatKdump, Codec: string(codec), DumpLevel: 1})
}

// collectFileOpts writes a dump of the ELF with collect.Collect.
func (e *elfCore) collectFileOpts(t *testing.T, path string, o collect.Options) dumpStats {
	t.Helper()
	src, err := vmcore.OpenFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	core, err := vmcore.Open(src, src.Size())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := collect.Collect(context.Background(), src, core, f, o)
	if err != nil {
		t.Fatalf("collect %s: %v", path, err)
	}
	st := dumpStats{pages: int(res.Pages.Dumped), zero: int(res.Pages.Zero), size: res.Bytes, elapsed: res.Duration}
	t.Logf("ours (collect) %s %s -d %d: %v", o.Format, o.Codec, o.DumpLevel, st)
	return st
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
