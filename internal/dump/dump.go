// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package dump opens a saved dump whatever its format — an ELF core, a
// kdump-compressed file, or a flattened stream — for everything that reads
// one (ukdump info and dmesg, the interop tests): the one place that tells
// the formats apart by their magic, says whether a dump is whole, and builds
// the reader of the crashed kernel's memory.
//
// A dump whose writing stopped (a vmcore.incomplete, a file cut short) is
// opened as far as it goes, with Incomplete saying why it is not whole.
package dump

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// Formats of a dump file.
const (
	FormatELF   = "elf"
	FormatKdump = "kdump"
	FormatFlat  = "flat"
)

// Dump is an open dump file.
type Dump struct {
	Path string
	// Format is the file's format: FormatELF, FormatKdump or FormatFlat.
	Format string
	// Size is the file's size in bytes.
	Size int64
	// Core is the ELF core (FormatELF).
	Core *vmcore.Core
	// Kdump is the kdump-compressed file (FormatKdump, and FormatFlat after
	// reassembly into a temporary file).
	Kdump *kdumpfile.File
	// Incomplete says why the dump is not whole; empty when it is.
	Incomplete []string

	in     *vmcore.File // the file at Path
	tmp    *os.File     // FormatFlat: the reassembled temporary file
	closed bool
}

// Open opens the dump at path. An error names the format the file's magic
// announced and the reason its reader gave.
func Open(path string) (*Dump, error) {
	f, err := vmcore.OpenFile(path) // mmap windows: fast for every format
	if err != nil {
		return nil, err
	}
	d := &Dump{Path: path, Size: f.Size(), in: f}
	var magic [16]byte
	n, err := f.ReadAt(magic[:], 0)
	if n < len(magic) && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("%s: read the first %d bytes: %w", path, len(magic), err)
	}
	switch m := magic[:n]; {
	case n == 0:
		err = fmt.Errorf("%s: empty file (0 bytes): not a dump (a capture that stopped before writing anything?)", path)
	case hasPrefix(m, vmcore.Magic):
		err = d.openELF()
	case hasPrefix(m, kdumpfile.Signature) || hasPrefix(m, "DISKDUMP"):
		err = d.openKdump(FormatKdump, f)
	case hasPrefix(m, "makedumpfile"):
		err = d.openFlat()
	default:
		err = fmt.Errorf("%s: not a dump: it starts with %q (want an ELF core, a kdump-compressed file or a flattened dump)", path, m)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func (d *Dump) openELF() error {
	d.Format = FormatELF
	c, err := vmcore.OpenPartial(d.in, d.Size)
	if err != nil {
		return fmt.Errorf("%s: ELF core: %w", d.Path, err)
	}
	d.Core = c
	if c.Header.Flags&vmcore.FlagIncomplete != 0 {
		d.Incomplete = append(d.Incomplete, "the ELF header says incomplete (e_flags DUMP_ELF_INCOMPLETE): its writing stopped")
	}
	if c.Truncated > 0 {
		d.Incomplete = append(d.Incomplete, fmt.Sprintf("the file is cut short: %d bytes of memory are past its end", c.Truncated))
	}
	return nil
}

func (d *Dump) openKdump(format string, r io.ReaderAt) error {
	d.Format = format
	kf, err := kdumpfile.Open(r)
	if err != nil {
		return fmt.Errorf("%s: kdump-compressed file: %w", d.Path, err)
	}
	d.Kdump = kf
	if kf.Incomplete() {
		d.Incomplete = append(d.Incomplete, "the header says incomplete (DUMP_DH_COMPRESSED_INCOMPLETE): its writing stopped; pages it did not write read as missing")
		return nil
	}
	// A header that says complete on a file cut short (a copy that stopped):
	// the last page must be readable.
	if last, ok := lastSet(kf.Dumpable()); ok {
		buf := make([]byte, kf.PageSize())
		if err := kf.ReadPage(last, buf); err != nil {
			d.Incomplete = append(d.Incomplete, fmt.Sprintf("the last page (pfn %#x) cannot be read: %v", last, err))
		}
	}
	return nil
}

// openFlat reassembles a flattened stream into a temporary file, which is
// removed when closed. A stream cut before its end record is reassembled
// as far as it goes.
func (d *Dump) openFlat() error {
	tmp, err := os.CreateTemp("", "ukdump-reassembled-*")
	if err != nil {
		return fmt.Errorf("%s: reassemble the flattened dump: %w", d.Path, err)
	}
	os.Remove(tmp.Name()) // gone when closed
	d.tmp = tmp
	err = kdumpfile.Reassemble(io.NewSectionReader(d.in, 0, d.Size), tmp)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		d.Incomplete = append(d.Incomplete, fmt.Sprintf("the flattened stream ends before its end record: %v", err))
	case err != nil:
		return fmt.Errorf("%s: flattened dump: %w", d.Path, err)
	}
	cut := d.Incomplete
	d.Incomplete = nil
	if err := d.openKdump(FormatFlat, tmp); err != nil {
		if len(cut) > 0 {
			return fmt.Errorf("%s: flattened dump cut short (%s), and what it holds is no readable kdump file: %w", d.Path, cut[0], err)
		}
		return fmt.Errorf("%s: flattened dump (reassembled): %w", d.Path, err)
	}
	d.Incomplete = append(cut, d.Incomplete...)
	return nil
}

// lastSet is the highest set bit of b.
func lastSet(b *bitmap.Bitmap) (uint64, bool) {
	bs := b.Bytes()
	for i := len(bs) - 1; i >= 0; i-- {
		if c := bs[i]; c != 0 {
			for bit := 7; bit >= 0; bit-- {
				if c&(1<<bit) != 0 {
					if pfn := uint64(i)*8 + uint64(bit); pfn < b.Len() {
						return pfn, true
					}
				}
			}
		}
	}
	return 0, false
}

// Complete reports whether the dump is whole.
func (d *Dump) Complete() bool { return len(d.Incomplete) == 0 }

// Info is the dump's VMCOREINFO, or nil.
func (d *Dump) Info() *vmcore.Info {
	if d.Core != nil {
		return d.Core.Info
	}
	if raw := d.Kdump.VMCoreInfo(); len(raw) > 0 {
		return vmcore.ParseInfo(raw)
	}
	return nil
}

// Kernel returns the reader of the crashed kernel's memory (physical and
// kernel-virtual reads); it needs VMCOREINFO.
func (d *Dump) Kernel() (*dumpmem.Kernel, error) {
	info := d.Info()
	if info == nil {
		return nil, fmt.Errorf("%s: the dump has no VMCOREINFO: cannot read the kernel's memory", d.Path)
	}
	var k *dumpmem.Kernel
	var err error
	if d.Core != nil {
		k, err = dumpmem.NewKernel(dumpmem.FromELF(d.in, d.Core), info, d.Core.Loads)
	} else {
		k, err = dumpmem.NewKernel(dumpmem.FromKdump(d.Kdump), info, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Path, err)
	}
	return k, nil
}

// Close closes the file (and removes a reassembled temporary file).
func (d *Dump) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.Kdump != nil {
		errs = append(errs, d.Kdump.Close())
	}
	if d.tmp != nil {
		errs = append(errs, d.tmp.Close())
	}
	errs = append(errs, d.in.Close())
	return errors.Join(errs...)
}

// Description is what `ukdump info` prints about a dump.
type Description struct {
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
	// Incomplete says why the dump is not whole.
	Incomplete []string `json:"incomplete,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// Describe reads what a dump's headers say.
func (d *Dump) Describe() Description {
	in := Description{File: d.Path, Format: d.Format, Size: d.Size, Complete: d.Complete(), Incomplete: d.Incomplete}
	if d.Format == FormatFlat {
		in.Note = "a flattened stream: rebuild the file with 'ukdump reassemble IN OUT' (or makedumpfile -R OUT < IN) for crash"
	}
	if kf := d.Kdump; kf != nil {
		in.Codec, in.PageSize = string(kf.Codec()), kf.PageSize()
		in.Pages, in.Dumped = kf.Present().Count(), kf.NumDumpable()
		if info := d.Info(); info != nil {
			in.KernelRelease = info.OSRelease()
		}
		if t := kf.Header().Time(); !t.IsZero() {
			in.CrashTime = t.UTC().Format(time.RFC3339)
		}
		return in
	}
	ps := uint64(vmcore.DefaultPageSize)
	if info := d.Core.Info; info != nil {
		in.KernelRelease = info.OSRelease()
		if p := info.PageSize(); p > 0 {
			ps, in.PageSize = uint64(p), int(p)
		}
		if t, ok := info.CrashTime(); ok {
			in.CrashTime = t.UTC().Format(time.RFC3339)
		}
	}
	for _, l := range d.Core.Loads { // cut to the file, if cut
		in.Dumped += l.Filesz / ps
	}
	for _, p := range d.Core.Phdrs { // as the header says
		if p.Type == vmcore.PTLoad {
			in.Pages += p.Memsz / ps
		}
	}
	return in
}
