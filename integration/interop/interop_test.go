// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/kdumpfile"
)

// TestInterop writes kdump-compressed files of the e2e core with our writer
// and has crash, makedumpfile and libkdumpfile read them; it also reads
// makedumpfile's files with our reader. The files are made once and shared
// by the subtests.
func TestInterop(t *testing.T) {
	needTools(t)
	e := openELF(t)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	t.Logf("%s: %d PT_LOADs, max_mapnr %#x, %d RAM pages", e.path, len(e.loads), e.present.Len(), e.present.Count())

	// makedumpfile's files, made while ours are written (2 cores). It
	// refuses to overwrite an output, so every name is new.
	var wg sync.WaitGroup
	var refErr error
	refStart := time.Now()
	var refZlibTime time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := runErr("makedumpfile", "-c", "-d", "1", e.path, path("ref-zlib-d1")); err != nil {
			refErr = err
			return
		}
		refZlibTime = time.Since(refStart)
		if _, err := runErr("makedumpfile", "-l", "-d", "1", e.path, path("ref-lzo-d1")); err != nil {
			refErr = err
			return
		}
		_, refErr = runErr("makedumpfile", "--dump-dmesg", e.path, path("dmesg-elf.txt"))
	}()

	codecs := []kdumpfile.Codec{kdumpfile.CodecZlib, kdumpfile.CodecNone, kdumpfile.CodecLZO, kdumpfile.CodecZstd, kdumpfile.CodecSnappy}
	ours := func(c kdumpfile.Codec) string { return path("ours-" + string(c) + "-d1") }
	stats := map[kdumpfile.Codec]dumpStats{}
	// "Ours" is the collector the capture and `ukdump collect` use: the
	// parallel pipeline of internal/collect.
	for _, c := range codecs {
		stats[c] = e.collectFile(t, ours(c), c)
	}
	// The test-local writer (used below for refiltered bitmaps) and the
	// collector write the same bytes.
	e.writeKdumpFile(t, path("local-zlib-d1"), kdumpfile.CodecZlib, 1, e.present)
	if a, b := readFile(t, path("local-zlib-d1")), readFile(t, ours(kdumpfile.CodecZlib)); !bytes.Equal(a, b) {
		t.Errorf("collect.Collect's zlib -d 1 file (%d bytes) differs from the page-by-page writer's (%d bytes)", len(b), len(a))
	}
	wg.Wait()
	if refErr != nil {
		t.Fatalf("makedumpfile: %v", refErr)
	}
	ref, err := os.Stat(path("ref-zlib-d1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("makedumpfile -c -d 1: %.1f MiB in %v (concurrently with ours); ours zlib -d 1: %.1f MiB in %v",
		float64(ref.Size())/(1<<20), refZlibTime.Round(time.Millisecond),
		float64(stats[kdumpfile.CodecZlib].size)/(1<<20), stats[kdumpfile.CodecZlib].elapsed.Round(time.Millisecond))

	elfRelease := osrelease(t, e.path)
	if !strings.HasPrefix(elfRelease, "6.1.0-") || !strings.HasSuffix(elfRelease, "-amd64") {
		t.Fatalf("crash --osrelease %s = %q, want 6.1.0-*-amd64", e.path, elfRelease)
	}

	t.Run("crash osrelease", func(t *testing.T) {
		// crash 8.0.2 reads all four codecs (it links liblzo2, libsnappy,
		// libzstd and zlib).
		for _, c := range codecs {
			if got := osrelease(t, ours(c)); got != elfRelease {
				t.Errorf("crash --osrelease ours-%s = %q, want %q (as for the ELF)", c, got, elfRelease)
			}
		}
	})

	t.Run("makedumpfile dump-dmesg", func(t *testing.T) {
		want, err := os.ReadFile(path("dmesg-elf.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(want, []byte("sysrq")) {
			t.Errorf("the ELF's dmesg lacks the sysrq crash")
		}
		// Debian's makedumpfile 1.7.2 reads zlib and lzo only.
		for _, c := range []kdumpfile.Codec{kdumpfile.CodecZlib, kdumpfile.CodecNone, kdumpfile.CodecLZO} {
			out := path("dmesg-ours-" + string(c) + ".txt")
			run(t, "makedumpfile", "--dump-dmesg", ours(c), out)
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("makedumpfile --dump-dmesg ours-%s: %d bytes, differs from the ELF's (%d bytes)", c, len(got), len(want))
			}
		}
	})

	t.Run("ELF without zero pages", func(t *testing.T) {
		// Our ELF writer at dump level 1: excluded runs become p_memsz tails.
		out := path("ours-elf-d1")
		e.collectFileOpts(t, out, collect.Options{Format: collect.FormatELF, DumpLevel: 1})
		if got := osrelease(t, out); got != elfRelease {
			t.Errorf("crash --osrelease ours-elf-d1 = %q, want %q", got, elfRelease)
		}
		run(t, "makedumpfile", "--dump-dmesg", out, path("dmesg-ours-elf-d1.txt"))
		if got, want := readFile(t, path("dmesg-ours-elf-d1.txt")), readFile(t, path("dmesg-elf.txt")); !bytes.Equal(got, want) {
			t.Errorf("makedumpfile --dump-dmesg ours-elf-d1: %d bytes, differs from the ELF's (%d bytes)", len(got), len(want))
		}
		if fi, _ := os.Stat(out); fi.Size() >= e.core.Size/2 {
			t.Errorf("ELF without zero pages is %d bytes, the full core %d: nothing excluded?", fi.Size(), e.core.Size)
		}
	})

	t.Run("bitmaps and headers equal makedumpfile's", func(t *testing.T) {
		for _, pair := range [][2]string{{"ours-zlib-d1", "ref-zlib-d1"}, {"ours-lzo-d1", "ref-lzo-d1"}} {
			o, doneO := openKdump(t, path(pair[0]))
			r, doneR := openKdump(t, path(pair[1]))
			if !bytes.Equal(o.Present().Bytes(), r.Present().Bytes()) {
				t.Errorf("%s: 1st bitmap differs from %s's", pair[0], pair[1])
			}
			if !bytes.Equal(o.Dumpable().Bytes(), r.Dumpable().Bytes()) {
				t.Errorf("%s: 2nd bitmap differs from %s's", pair[0], pair[1])
			}
			if !bytes.Equal(o.Notes(), r.Notes()) {
				t.Errorf("%s: notes differ from %s's", pair[0], pair[1])
			}
			if !bytes.Equal(o.VMCoreInfo(), r.VMCoreInfo()) {
				t.Errorf("%s: VMCOREINFO differs from %s's", pair[0], pair[1])
			}
			// makedumpfile reads nodename, version and domainname from
			// init_uts_ns in memory; we leave them to the caller.
			oh, rh := o.Header(), r.Header()
			oh.Utsname.Nodename, oh.Utsname.Version, oh.Utsname.Domainname = "", "", ""
			rh.Utsname.Nodename, rh.Utsname.Version, rh.Utsname.Domainname = "", "", ""
			if diff := cmp.Diff(rh, oh); diff != "" {
				t.Errorf("%s: header (-makedumpfile +ours):\n%s", pair[0], diff)
			}
			if diff := cmp.Diff(r.SubHeader(), o.SubHeader()); diff != "" {
				t.Errorf("%s: sub-header (-makedumpfile +ours):\n%s", pair[0], diff)
			}
			t.Logf("%s: utsname ours %+v, makedumpfile %+v", pair[0], o.Header().Utsname, r.Header().Utsname)
			doneO()
			doneR()
		}
	})

	t.Run("our reader on makedumpfile's files", func(t *testing.T) {
		e.comparePages(t, path("ref-zlib-d1"))
		e.comparePages(t, path("ref-lzo-d1"))
	})

	t.Run("our reader round trip", func(t *testing.T) {
		for _, c := range []kdumpfile.Codec{kdumpfile.CodecZstd, kdumpfile.CodecSnappy} {
			e.comparePages(t, ours(c))
		}
	})

	// Refiltering: makedumpfile reads mem_map etc. from our file to exclude
	// pages at -d 31. The result must be what it makes from its own file.
	var d31 *bitmap.Bitmap
	t.Run("makedumpfile refilter", func(t *testing.T) {
		run(t, "makedumpfile", "-c", "-d", "31", ours(kdumpfile.CodecZlib), path("refilt-ours-d31"))
		run(t, "makedumpfile", "-c", "-d", "31", path("ref-zlib-d1"), path("refilt-ref-d31"))
		o, doneO := openKdump(t, path("refilt-ours-d31"))
		defer doneO()
		r, doneR := openKdump(t, path("refilt-ref-d31"))
		defer doneR()
		if !bytes.Equal(o.Present().Bytes(), r.Present().Bytes()) || !bytes.Equal(o.Dumpable().Bytes(), r.Dumpable().Bytes()) {
			t.Errorf("refiltered bitmaps differ: ours %d/%d pages, makedumpfile's %d/%d",
				o.Dumpable().Count(), o.Present().Count(), r.Dumpable().Count(), r.Present().Count())
		}
		d31 = r.Dumpable().Clone()
		if d31.Count() >= e.present.Count() {
			t.Errorf("-d 31 kept %d of %d pages: nothing excluded", d31.Count(), e.present.Count())
		}
		e.comparePages(t, path("refilt-ours-d31"))
	})
	if d31 == nil {
		t.Fatalf("no -d 31 bitmap to go on with")
	}

	// Our own -d 31 file, from makedumpfile's page selection: it has
	// excluded pages for the readers to refuse.
	oursD31 := path("ours-zlib-d31")
	d31Stats := e.writeKdumpFile(t, oursD31, kdumpfile.CodecZlib, 31, d31)
	if got, want := d31Stats.pages, int(d31.Count()); got != want {
		t.Errorf("ours -d 31: %d pages, want %d", got, want)
	}

	t.Run("libkdumpfile", func(t *testing.T) {
		for _, tt := range []struct {
			file     string
			dumpable *bitmap.Bitmap
		}{
			// Debian's libkdumpfile 0.5.1 links zlib, liblzo2, libsnappy
			// and libzstd: an independent decoder for every codec.
			{ours(kdumpfile.CodecZlib), e.present},
			{ours(kdumpfile.CodecNone), e.present},
			{ours(kdumpfile.CodecLZO), e.present},
			{ours(kdumpfile.CodecZstd), e.present},
			{ours(kdumpfile.CodecSnappy), e.present},
			{oursD31, d31},
		} {
			bm := tt.file + ".dumpable"
			if err := os.WriteFile(bm, tt.dumpable.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSpace(run(t, python, filepath.Join("testdata", "compare_pages.py"), tt.file, e.path, bm, fmt.Sprint(e.pageSize)))
			want := fmt.Sprintf("release=%s read=%d excluded=%d bad=0", elfRelease, tt.dumpable.Count(), e.present.Count()-tt.dumpable.Count())
			if out != want {
				t.Errorf("compare_pages.py %s = %q, want %q", filepath.Base(tt.file), out, want)
			}
		}
	})

	t.Run("excluded pages", func(t *testing.T) {
		if got := osrelease(t, oursD31); got != elfRelease {
			t.Errorf("crash --osrelease ours-zlib-d31 = %q, want %q", got, elfRelease)
		}
		run(t, "makedumpfile", "--dump-dmesg", oursD31, path("dmesg-ours-d31.txt"))
		got, err := os.ReadFile(path("dmesg-ours-d31.txt"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(path("dmesg-elf.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("makedumpfile --dump-dmesg ours-zlib-d31 differs from the ELF's")
		}
		e.comparePages(t, oursD31)
	})

	t.Run("flattened", func(t *testing.T) {
		flat := path("ours-zlib-d31.flat")
		f, err := os.Create(flat)
		if err != nil {
			t.Fatal(err)
		}
		fw := kdumpfile.NewFlatWriter(f)
		if _, err := e.writeKdump(fw, kdumpfile.CodecZlib, 31, d31); err != nil {
			t.Fatalf("writing %s: %v", flat, err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		direct, err := os.ReadFile(oursD31)
		if err != nil {
			t.Fatal(err)
		}
		// makedumpfile -R reads the stream on stdin.
		re := path("ours-zlib-d31.reassembled")
		in, err := os.Open(flat)
		if err != nil {
			t.Fatal(err)
		}
		if err := runStdin(in, "makedumpfile", "-R", re); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if got, err := os.ReadFile(re); err != nil || !bytes.Equal(got, direct) {
			t.Errorf("makedumpfile -R of our flattened stream (%d bytes) differs from the direct write (%d bytes)", len(got), len(direct))
		}
		// Our Reassemble gives the same.
		in, err = os.Open(flat)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := os.Create(path("ours-zlib-d31.reassembled-by-us"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if err := kdumpfile.Reassemble(in, out); err != nil {
			t.Fatalf("Reassemble = %v", err)
		}
		if got, err := os.ReadFile(out.Name()); err != nil || !bytes.Equal(got, direct) {
			t.Errorf("Reassemble of our flattened stream differs from the direct write")
		}
		// crash reads flattened files directly.
		if got := osrelease(t, flat); got != elfRelease {
			t.Errorf("crash --osrelease of the flattened stream = %q, want %q", got, elfRelease)
		}
	})

	t.Run("incomplete", func(t *testing.T) {
		full := stats[kdumpfile.CodecZlib].size
		name := path("ours-zlib-d1-incomplete")
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.writeKdump(fullFile{File: f, quota: full / 2}, kdumpfile.CodecZlib, 1, e.present)
		f.Close()
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("writing on a full disk = %v, want ENOSPC", err)
		}
		kf, done := openKdump(t, name)
		defer done()
		if !kf.Incomplete() || kf.Header().Status&kdumpfile.StatusIncomplete == 0 {
			t.Errorf("status %#x: the INCOMPLETE bit is not set", kf.Header().Status)
		}
		// Every page reads back or is missing; the missing ones come last.
		buf := make([]byte, e.pageSize)
		good, missing := 0, 0
		for pfn, ok := e.present.NextSet(0); ok; pfn, ok = e.present.NextSet(pfn + 1) {
			err := kf.ReadPage(pfn, buf)
			switch {
			case errors.Is(err, kdumpfile.ErrIncomplete):
				missing++
			case err != nil:
				t.Fatalf("ReadPage(%#x) = %v", pfn, err)
			case missing > 0:
				t.Fatalf("ReadPage(%#x) succeeded after %d missing pages", pfn, missing)
			default:
				good++
			}
		}
		t.Logf("incomplete dump (disk full at %.1f MiB): %d pages saved, %d missing", float64(full/2)/(1<<20), good, missing)
		if good == 0 || missing == 0 {
			t.Errorf("%d pages saved, %d missing; want some of each", good, missing)
		}
		if got := osrelease(t, name); got != elfRelease {
			t.Errorf("crash --osrelease of the incomplete dump = %q, want %q", got, elfRelease)
		}
	})

	timings.Range(func(k, v any) bool {
		t.Logf("%v: %s", v.(time.Duration).Round(time.Millisecond), k)
		return true
	})
}
