// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/kexec"
	"github.com/ukdump/ukdump/internal/memmap"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// The physical layout of a synthetic machine (machineMem): the
// mem_section root array, the mem_section structs it points to, the pages
// in use (kept by every dump level: the first liveBytes of RAM, of which
// the part from dataPA on is pseudo-random data, every fourth page zero),
// and the struct pages, at the top of RAM. All other memory is free, in
// buddy blocks of order 10 (4 MiB), and reads as zeros.
const (
	pageOffset = 0xffff888000000000 // the direct map
	rootPA     = 0x10000
	sectPA     = 0x100000
	dataPA     = 16 << 20
	liveBytes  = 32 << 20
	buddyOrder = 10
)

// machineMem is the physical memory of a synthetic machine of ram bytes,
// generated on the fly: the memory of a 1 TiB machine costs nothing but the
// reads of it. Its mem_map is made up (every free block's head says buddy,
// every other struct page is zeros: a page in use by the kernel), and the
// struct pages' own frames are among the free ones: a real 1 TiB machine's
// dump holds its 16 GiB mem_map, which a unit test cannot read in time.
type machineMem struct {
	ram      uint64
	l        *memmap.Layout
	memMapPA uint64
	nroots   uint64
}

func newMachineMem(t *testing.T, ram uint64, info *vmcore.Info) *machineMem {
	l, err := memmap.NewLayout(info)
	if err != nil {
		t.Fatal(err)
	}
	pfns := ram / 4096
	m := &machineMem{ram: ram, l: l, memMapPA: (ram - pfns*uint64(l.SizeOfPage)) &^ (1<<21 - 1)}
	sections := (pfns + l.PagesPerSection() - 1) / l.PagesPerSection()
	m.nroots = (sections + l.SectionsPerRoot() - 1) / l.SectionsPerRoot()
	return m
}

func (m *machineMem) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	lo, hi := uint64(off), uint64(off)+uint64(len(p))
	put := func(at uint64, b []byte) { // b at physical address at, clipped to p
		if at < hi && at+uint64(len(b)) > lo {
			s := max(at, lo)
			copy(p[s-lo:], b[s-at:])
		}
	}
	var v [8]byte
	sz := uint64(m.l.SizeOfPage)
	pps, spr := m.l.PagesPerSection(), m.l.SectionsPerRoot()
	sections := (m.ram/4096 + pps - 1) / pps
	// The root array and the mem_section structs.
	for i := uint64(0); i < m.nroots; i++ {
		binary.LittleEndian.PutUint64(v[:], pageOffset+sectPA+i*4096)
		put(rootPA+8*i, v[:])
	}
	if lo < sectPA+m.nroots*4096 && hi > sectPA {
		for nr := uint64(0); nr < sections; nr++ {
			at := sectPA + (nr/spr)*4096 + (nr%spr)*uint64(m.l.SizeOfMemSection)
			binary.LittleEndian.PutUint64(v[:], (pageOffset+m.memMapPA)|3)
			put(at+uint64(m.l.SectionMemMap), v[:])
		}
	}
	// Data.
	for a := max(lo, dataPA) &^ 7; a < min(hi, liveBytes); a += 8 {
		if (a/4096)%4 == 0 {
			continue
		}
		x := a*0x9e3779b97f4a7c15 + 1
		x ^= x >> 31
		x *= 0xbf58476d1ce4e5b9
		binary.LittleEndian.PutUint64(v[:], x^x>>29)
		put(a, v[:])
	}
	// The struct pages of the free blocks' heads.
	mmEnd := m.memMapPA + m.ram/4096*sz
	if lo < mmEnd && hi > m.memMapPA {
		head := make([]byte, sz)
		binary.LittleEndian.PutUint32(head[m.l.Mapcount:], uint32(int32(m.l.BuddyMapcount.V)))
		binary.LittleEndian.PutUint64(head[m.l.Private:], buddyOrder)
		first := (max(lo, m.memMapPA) - m.memMapPA) / sz
		last := (min(hi, mmEnd) - m.memMapPA + sz - 1) / sz
		for pfn := (first + 1<<buddyOrder - 1) &^ (1<<buddyOrder - 1); pfn < last; pfn += 1 << buddyOrder {
			if pfn*4096 >= liveBytes {
				put(m.memMapPA+pfn*sz, head)
			}
		}
	}
	return len(p), nil
}

// machine returns a synthetic core of a machine with ram bytes of RAM in one
// PT_LOAD, its VMCOREINFO that of a real 6.1 kernel but for mem_section.
func machine(t *testing.T, ram uint64) (*vmcore.Image, *vmcore.Core) {
	t.Helper()
	b, err := os.ReadFile("../memmap/testdata/vmcoreinfo-6.1.0-50-amd64.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "SYMBOL(mem_section)=") {
			line = fmt.Sprintf("SYMBOL(mem_section)=%x", uint64(pageOffset+rootPA))
		}
		lines = append(lines, line)
	}
	text := strings.Join(lines, "\n")
	mem := newMachineMem(t, ram, vmcore.ParseInfo([]byte(text)))
	notes := []vmcore.Note{
		{Name: vmcore.NoteCore, Type: vmcore.NTPrStatus, Desc: make([]byte, 336)},
		{Name: vmcore.NoteVMCoreInfo, Desc: []byte(text)},
	}
	im := vmcore.NewImage(notes, []vmcore.Segment{{Vaddr: pageOffset, Paddr: 0, Filesz: ram, Memsz: ram, Src: mem}}, vmcore.DefaultPageSize)
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	return im, c
}

// peakHeap runs f and returns the most heap memory in use (objects, live or
// not yet swept) seen while it ran, sampled every millisecond, above what
// was in use before.
func peakHeap(f func()) uint64 {
	const name = "/memory/classes/heap/objects:bytes"
	sample := []metrics.Sample{{Name: name}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak uint64
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: name}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			peak = max(peak, s[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

// TestPeakHeapIndependentOfMachineSize collects synthetic machines of 1 GiB
// and 1 TiB with the same 32 MiB in use (the rest free, excluded at dump
// level 31) and checks that collect's heap peaks at the same height for
// both: nothing it holds grows with the machine's page count (268M frames
// at 1 TiB: 32 MiB per whole-machine bitmap).
func TestPeakHeapIndependentOfMachineSize(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // so the peaks measure live memory, not GC pacing
	// The size check (kexec.MachineBytes) counts ProcessWindows for the
	// growth from 1 GiB on; twice that allows for the collector's pacing.
	const slack = 2 * kexec.ProcessWindows
	for _, o := range []collect.Options{
		{Format: collect.FormatKdump, Codec: "zstd", DumpLevel: 31, Workers: 2, LowMemory: true},
		{Format: collect.FormatELF, DumpLevel: 31, Workers: 2, LowMemory: true},
	} {
		t.Run(o.Format, func(t *testing.T) {
			var peaks []uint64
			for _, ram := range []uint64{1 << 30, 1 << 40} {
				im, c := machine(t, ram)
				path := filepath.Join(t.TempDir(), "dump")
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				var res collect.Result
				start := time.Now()
				peak := peakHeap(func() { res, err = collect.Collect(context.Background(), im, c, f, o) })
				f.Close()
				if err != nil {
					t.Fatalf("Collect(%d GiB machine) = %v", ram>>30, err)
				}
				t.Logf("%d GiB machine, %s: peak heap %.1f MiB, %v; %+v", ram>>30, o.Format, float64(peak)/(1<<20), time.Since(start).Round(time.Millisecond), res.Pages)
				if want := uint64(liveBytes / 4096); res.Pages.Total != ram/4096 || res.Pages.Dumped != want && o.Format == collect.FormatKdump {
					t.Errorf("%d GiB machine: pages %+v, want %d in all, %d dumped", ram>>30, res.Pages, ram/4096, want)
				}
				if len(res.Warnings) > 0 {
					t.Errorf("%d GiB machine: warnings %q", ram>>30, res.Warnings)
				}
				if o.Format == collect.FormatKdump {
					checkKdump(t, path, ram)
				}
				peaks = append(peaks, peak)
			}
			if peaks[1] > peaks[0]+slack {
				t.Errorf("%s: peak heap %.1f MiB for 1 TiB, %.1f MiB for 1 GiB: more than %d MiB apart", o.Format, float64(peaks[1])/(1<<20), float64(peaks[0])/(1<<20), slack>>20)
			}
		})
	}
}

// checkKdump opens a dump of a synthetic machine and reads a page in use
// and a free one.
func checkKdump(t *testing.T, path string, ram uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kf, err := kdumpfile.Open(f)
	if err != nil {
		t.Fatalf("kdumpfile.Open = %v", err)
	}
	defer kf.Close()
	if kf.Incomplete() || kf.MaxPFN() != ram/4096 || kf.NumDumpable() != liveBytes/4096 {
		t.Errorf("dump: incomplete %v, max_mapnr %#x, %d dumpable", kf.Incomplete(), kf.MaxPFN(), kf.NumDumpable())
	}
	buf := make([]byte, 4096)
	pfn := uint64(dataPA/4096 + 1)
	if err := kf.ReadPage(pfn, buf); err != nil || binary.LittleEndian.Uint64(buf) == 0 {
		t.Errorf("ReadPage(%#x) = %v, %x…", pfn, err, buf[:8])
	}
	if err := kf.ReadPage(ram/4096-1, buf); err == nil {
		t.Errorf("ReadPage(the last, free pfn) = nil error, want excluded")
	}
}

// TestHeapPerCPUAndPTLoad measures what a crashed machine's CPU count (its
// NT_PRSTATUS notes) and RAM ranges (PT_LOADs) cost the capture's heap:
// opening the core and collecting it, kdump to a file and flattened to a
// stream, against the same 16 MiB with 1 CPU and 1 PT_LOAD. The figures
// enter the crashkernel= size check (kexec.ProcessPerCPU, ProcessPerRange).
func TestHeapPerCPUAndPTLoad(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	const n = 4096
	var split [][2]uint64
	for i := uint64(0); i < n; i++ {
		split = append(split, [2]uint64{0x100000 + i*8192, 4096})
	}
	cores := []vmcoretest.Core{
		{CPUs: 1, Segments: [][2]uint64{{0x100000, n * 4096}}, Seed: 1},
		{CPUs: n, Segments: [][2]uint64{{0x100000, n * 4096}}, Seed: 1},
		{CPUs: 1, Segments: split, Seed: 1},
	}
	for _, o := range []collect.Options{
		{Format: collect.FormatKdump, Codec: "zstd", DumpLevel: 1, Workers: 1, LowMemory: true},
		{Format: collect.FormatFlat, Codec: "zstd", DumpLevel: 1, Workers: 1, LowMemory: true},
	} {
		var peaks []uint64
		for _, cc := range cores {
			im, err := cc.Build()
			if err != nil {
				t.Fatal(err)
			}
			// The least of three runs: when the GC runs against a buffer
			// of the writer's moves a peak by 1 MiB, 256 bytes in each of
			// the 4096 CPUs or PT_LOADs the difference is divided by.
			var least uint64
			for run := 0; run < 3; run++ {
				f, err := os.Create(filepath.Join(t.TempDir(), "dump"))
				if err != nil {
					t.Fatal(err)
				}
				var w io.Writer = f
				if o.Format == collect.FormatFlat {
					w = stream{f}
				}
				peak := peakHeap(func() {
					var c *vmcore.Core
					if c, err = vmcore.Open(im, im.Size()); err == nil {
						_, err = collect.Collect(context.Background(), im, c, w, o)
					}
				})
				f.Close()
				if err != nil {
					t.Fatalf("Collect(%d CPUs, %d PT_LOADs) = %v", cc.CPUs, len(cc.Segments), err)
				}
				if run == 0 || peak < least {
					least = peak
				}
			}
			peaks = append(peaks, least)
		}
		perCPU := float64(int64(peaks[1])-int64(peaks[0])) / (n - 1)
		perRange := float64(int64(peaks[2])-int64(peaks[0])) / (n - 1)
		t.Logf("%s: peak heap %.2f MiB (1 CPU, 1 PT_LOAD), %.2f MiB (%d CPUs), %.2f MiB (%d PT_LOADs): %.0f bytes per CPU, %.0f per PT_LOAD",
			o.Format, float64(peaks[0])/(1<<20), float64(peaks[1])/(1<<20), n, float64(peaks[2])/(1<<20), n, perCPU, perRange)
		if perCPU > kexec.ProcessPerCPU || perRange > kexec.ProcessPerRange {
			t.Errorf("%s: %.0f bytes per CPU, %.0f per PT_LOAD; the size check assumes at most %d and %d", o.Format, perCPU, perRange, kexec.ProcessPerCPU, kexec.ProcessPerRange)
		}
	}
}
