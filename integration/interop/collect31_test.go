// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/ukdump/ukdump/internal/collect"
)

// TestCollectLevel31 checks the collector's -d 31 kdump file, as the capture
// writes it by default, against makedumpfile -c -d 31 of the same ELF: the
// same two bitmaps, and makedumpfile reads the same log from both.
func TestCollectLevel31(t *testing.T) {
	needTools(t)
	e := openELF(t)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours-d31"), filepath.Join(dir, "theirs-d31")
	e.collectFileOpts(t, ours, collect.Options{Format: collect.FormatKdump, Codec: "zlib", DumpLevel: 31})
	run(t, "makedumpfile", "-c", "-d", "31", e.path, theirs)
	a, closeA := openKdump(t, ours)
	defer closeA()
	b, closeB := openKdump(t, theirs)
	defer closeB()
	if !bytes.Equal(a.Present().Bytes(), b.Present().Bytes()) {
		t.Errorf("1st bitmap differs from makedumpfile -d 31's")
	}
	if !bytes.Equal(a.Dumpable().Bytes(), b.Dumpable().Bytes()) {
		t.Errorf("2nd bitmap differs from makedumpfile -d 31's: ours %d pages, theirs %d", a.Dumpable().Count(), b.Dumpable().Count())
	}
	run(t, "makedumpfile", "--dump-dmesg", ours, filepath.Join(dir, "ours.txt"))
	run(t, "makedumpfile", "--dump-dmesg", e.path, filepath.Join(dir, "elf.txt"))
	if !bytes.Equal(readFile(t, filepath.Join(dir, "ours.txt")), readFile(t, filepath.Join(dir, "elf.txt"))) {
		t.Errorf("makedumpfile --dump-dmesg of our -d 31 file differs from the ELF's")
	}
	if osrelease(t, ours) != osrelease(t, e.path) {
		t.Errorf("crash --osrelease differs")
	}
}
