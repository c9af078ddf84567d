// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ukdump/ukdump/internal/bitmap"
	"github.com/ukdump/ukdump/internal/dumplevel"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/memmap"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// vmcore612Path is the ELF core of a 1 GiB Debian 6.12 guest that the QEMU
// end-to-end run saved.
var vmcore612Path = filepath.Join("..", "..", "out", "e2e-612elf", "dump", "vmcore")

const make612 = "go test -tags e2e -run 'TestE2E/612elf$' ./integration/e2e/ (or make e2e)"

// core612 is the 6.12 core opened for page exclusion.
type core612 struct {
	path    string
	core    *vmcore.Core
	k       *dumpmem.Kernel
	present *bitmap.Bitmap
	maxPFN  uint64
}

func open612(t *testing.T) *core612 {
	t.Helper()
	if _, err := os.Stat(vmcore612Path); err != nil {
		t.Fatalf("the 6.12 e2e vmcore is missing (%v): run %s", err, make612)
	}
	f, err := vmcore.OpenFile(vmcore612Path)
	if err != nil {
		t.Fatalf("vmcore.OpenFile(%s) = %v", vmcore612Path, err)
	}
	t.Cleanup(func() { f.Close() })
	c, err := vmcore.Open(f, f.Size())
	if err != nil {
		t.Fatalf("vmcore.Open(%s) = %v", vmcore612Path, err)
	}
	if c.Info == nil || c.Info.PageSize() <= 0 {
		t.Fatalf("%s: no usable VMCOREINFO", vmcore612Path)
	}
	ps := uint64(c.Info.PageSize())
	var maxPFN uint64
	for _, p := range c.Loads {
		maxPFN = max(maxPFN, (p.Paddr+p.Memsz+ps-1)/ps)
	}
	present := bitmap.New(maxPFN)
	for _, p := range c.Loads {
		present.SetRange(p.Paddr/ps, (p.Paddr+p.Memsz)/ps)
	}
	k, err := dumpmem.NewKernel(dumpmem.FromELF(f, c), c.Info, c.Loads)
	if err != nil {
		t.Fatalf("dumpmem.NewKernel() = %v", err)
	}
	return &core612{path: vmcore612Path, core: c, k: k, present: present, maxPFN: maxPFN}
}

// vmcoreinfo is a VMCOREINFO reader that remembers what was missing.
type vmcoreinfo struct {
	info    *vmcore.Info
	missing []string
}

func (v *vmcoreinfo) get(kind, name string, f func(string) (int64, bool)) uint64 {
	x, ok := f(name)
	if !ok {
		v.missing = append(v.missing, kind+"("+name+")")
	}
	return uint64(x)
}
func (v *vmcoreinfo) off(name string) uint64  { return v.get("OFFSET", name, v.info.Offset) }
func (v *vmcoreinfo) size(name string) uint64 { return v.get("SIZE", name, v.info.SizeOf) }
func (v *vmcoreinfo) num(name string) uint64  { return v.get("NUMBER", name, v.info.Number) }
func (v *vmcoreinfo) len(name string) uint64  { return v.get("LENGTH", name, v.info.Length) }
func (v *vmcoreinfo) sym(name string) uint64 {
	x, ok := v.info.Symbol(name)
	if !ok {
		v.missing = append(v.missing, "SYMBOL("+name+")")
	}
	return x
}

// freeLists is what walking the buddy allocator's free lists found.
type freeLists struct {
	free      *bitmap.Bitmap // every pfn of every block on a free list
	blocks    uint64         // list entries
	pages     uint64         // pfns in free
	vmStat    uint64         // sum of the zones' vm_stat[NR_FREE_PAGES]
	badEntry  []string       // entries whose struct page does not say buddy of that order
	zonesSeen int
}

// walkFreeLists builds the set of free pfns from the buddy allocator's own
// lists, from VMCOREINFO alone: for each node in node_data, each of its
// nr_zones zones, each order below LENGTH(zone.free_area) and each
// migratetype below LENGTH(free_area.free_list), every list_head on
// zone.free_area[order].free_list[mt] is the lru of a struct page in the
// vmemmap heading a free block of 1<<order pages.
func walkFreeLists(c *core612) (*freeLists, error) {
	v := &vmcoreinfo{info: c.core.Info}
	var (
		nodeData    = v.sym("node_data")
		nNodes      = v.len("node_data")
		nodeZones   = v.off("pglist_data.node_zones")
		nrZones     = v.off("pglist_data.nr_zones")
		sizeZone    = v.size("zone")
		freeArea    = v.off("zone.free_area")
		nOrders     = v.len("zone.free_area")
		sizeFA      = v.size("free_area")
		freeList    = v.off("free_area.free_list")
		nMT         = v.len("free_area.free_list")
		sizeLH      = v.size("list_head")
		lhNext      = v.off("list_head.next")
		vmStat      = v.off("zone.vm_stat")
		sizeAtomic  = v.size("atomic_long_t")
		nrFreePages = v.num("NR_FREE_PAGES")
		vmemmap     = v.sym("vmemmap")
		sizePage    = v.size("page")
		pageLRU     = v.off("page.lru")
		pageMapcnt  = v.off("page._mapcount")
		pagePrivate = v.off("page.private")
		buddy       = v.num("PAGE_BUDDY_MAPCOUNT_VALUE")
	)
	if len(v.missing) > 0 {
		return nil, fmt.Errorf("VMCOREINFO lacks %v", v.missing)
	}
	fl := &freeLists{free: bitmap.New(c.maxPFN)}
	k := c.k
	for n := range nNodes {
		pgdat, err := k.ReadU64(nodeData + 8*n)
		if err != nil {
			return nil, fmt.Errorf("node_data[%d]: %w", n, err)
		}
		if pgdat == 0 {
			continue
		}
		nz, err := k.ReadU32(pgdat + nrZones)
		if err != nil {
			return nil, fmt.Errorf("node %d nr_zones: %w", n, err)
		}
		for z := range uint64(nz) {
			zone := pgdat + nodeZones + z*sizeZone
			fl.zonesSeen++
			st, err := k.ReadU64(zone + vmStat + nrFreePages*sizeAtomic)
			if err != nil {
				return nil, fmt.Errorf("node %d zone %d vm_stat: %w", n, z, err)
			}
			fl.vmStat += st
			for o := range nOrders {
				for mt := range nMT {
					head := zone + freeArea + o*sizeFA + freeList + mt*sizeLH
					e, err := k.ReadU64(head + lhNext)
					if err != nil {
						return nil, fmt.Errorf("node %d zone %d order %d mt %d list head: %w", n, z, o, mt, err)
					}
					if e == 0 { // never initialised: an empty zone
						continue
					}
					for steps := 0; e != head; steps++ {
						if steps > 1<<22 {
							return nil, fmt.Errorf("node %d zone %d order %d mt %d: list does not end", n, z, o, mt)
						}
						page := e - pageLRU
						if page < vmemmap || (page-vmemmap)%sizePage != 0 {
							return nil, fmt.Errorf("free list entry %#x is not a struct page's lru", e)
						}
						pfn := (page - vmemmap) / sizePage
						mc, err1 := k.ReadU32(page + pageMapcnt)
						pr, err2 := k.ReadU64(page + pagePrivate)
						if err1 != nil || err2 != nil || int32(mc) != int32(buddy) || pr != o {
							fl.badEntry = append(fl.badEntry, fmt.Sprintf("pfn %#x order %d: _mapcount %#x private %d", pfn, o, mc, pr))
						}
						end := min(pfn+1<<o, c.maxPFN)
						for p := pfn; p < end; p++ {
							if !fl.free.Get(p) {
								fl.free.Set(p)
								fl.pages++
							}
						}
						fl.blocks++
						if e, err = k.ReadU64(e + lhNext); err != nil {
							return nil, fmt.Errorf("free list entry next: %w", err)
						}
					}
				}
			}
		}
	}
	return fl, nil
}

// rawPage is one struct page read raw, with what makes the 6.12 kernel
// call it what it is.
type rawPage struct {
	pfn                           uint64
	flags, head, mapping, private uint64
	mapcount                      uint32
	tail1Flags                    uint64 // the next struct page's flags
}

func readPage(c *core612, pfn uint64) (rawPage, error) {
	in := c.core.Info
	vmemmap, _ := in.Symbol("vmemmap")
	sz, _ := in.SizeOf("page")
	var b [128]byte
	if err := c.k.ReadVirt(b[:2*sz], vmemmap+pfn*uint64(sz)); err != nil {
		return rawPage{}, err
	}
	o := func(name string) int64 { v, _ := in.Offset(name); return v }
	le := binary.LittleEndian
	return rawPage{
		pfn:        pfn,
		flags:      le.Uint64(b[o("page.flags"):]),
		head:       le.Uint64(b[o("page.compound_head"):]),
		mapping:    le.Uint64(b[o("page.mapping"):]),
		private:    le.Uint64(b[o("page.private"):]),
		mapcount:   le.Uint32(b[o("page._mapcount"):]),
		tail1Flags: le.Uint64(b[sz+o("page.flags"):]),
	}, nil
}

// TestMemmap612 checks memmap.Exclude on a 6.12 core, which Debian's
// makedumpfile 1.7.2 does not know ("The kernel version is not supported").
//
// Level 16 is checked against the pages' real state: the free pfns found by
// walking every zone's buddy free lists (walkFreeLists) must be exactly the
// frames Exclude drops, and exactly the frames makedumpfile drops.
//
// For every level the 2nd bitmap must equal makedumpfile's except at frames
// where makedumpfile 1.7.2 is wrong about 6.12, and each of those must show
// in its struct page why:
//
//   - makedumpfile drops, we keep: a slab page (_mapcount ==
//     PAGE_SLAB_MAPCOUNT_VALUE) whose page.mapping, overlaid by struct
//     slab's fields since 6.2, has bit 0 set. 1.7.2 reads that as
//     PAGE_MAPPING_ANON and drops kernel memory as user data at level 8
//     (fixed in 1.7.3; it also knows no PAGE_SLAB_MAPCOUNT_VALUE).
//   - we drop, makedumpfile keeps: a tail page of a compound page whose
//     head both drop (at level 8, an anonymous one: a THP). A folio is
//     excluded whole; 1.7.2 cannot read the
//     order of a 6.6+ folio (the low byte of the first tail page's flags,
//     as folio._flags_1), takes it as 0 and drops the head alone.
//
// Any other difference fails.
func TestMemmap612(t *testing.T) {
	if _, err := exec.LookPath("makedumpfile"); err != nil {
		t.Fatalf("makedumpfile not found (%v): run scripts/deps.sh", err)
	}
	c := open612(t)
	info := c.core.Info
	v := &vmcoreinfo{info: info}
	slabType := uint32(v.num("PAGE_SLAB_MAPCOUNT_VALUE"))
	headMask := v.num("PG_head_mask")
	vmemmap := v.sym("vmemmap")
	sizePage := v.size("page")
	if len(v.missing) > 0 {
		t.Fatalf("VMCOREINFO of %s lacks %v", c.path, v.missing)
	}

	fl, err := walkFreeLists(c)
	if err != nil {
		t.Fatalf("walking the buddy free lists: %v", err)
	}
	t.Logf("buddy free lists: %d zones, %d blocks, %d pages; zones' vm_stat[NR_FREE_PAGES] %d", fl.zonesSeen, fl.blocks, fl.pages, fl.vmStat)
	if len(fl.badEntry) > 0 {
		t.Errorf("%d free list entries are not buddy heads of their list's order, e.g. %s", len(fl.badEntry), fl.badEntry[0])
	}
	if fl.pages == 0 {
		t.Fatalf("the buddy free lists hold no page")
	}

	for _, level := range []int{2, 4, 8, 16, 31} {
		t.Run(fmt.Sprintf("d%d", level), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "dump")
			if b, err := exec.Command("makedumpfile", "-c", "-d", fmt.Sprint(level), c.path, out).CombinedOutput(); err != nil {
				t.Fatalf("makedumpfile -c -d %d = %v:\n%s", level, err, b)
			}
			fd, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer fd.Close()
			f, err := kdumpfile.Open(fd)
			if err != nil {
				t.Fatalf("kdumpfile.Open(%s) = %v", out, err)
			}
			if got, want := f.MaxPFN(), c.maxPFN; got != want {
				t.Fatalf("makedumpfile max pfn = %#x; ours %#x", got, want)
			}
			md := f.Dumpable()
			got, cnt, err := memmap.Exclude(c.k, level, c.maxPFN, c.present)
			if err != nil {
				t.Fatalf("memmap.Exclude(level %d) = %v", level, err)
			}
			t.Logf("memmap.Exclude(level %d): %+v; %d dumpable, makedumpfile %d", level, cnt, got.Count(), md.Count())
			if cnt.Unreadable != 0 {
				t.Errorf("memmap.Exclude(level %d) could not read %d struct pages", level, cnt.Unreadable)
			}

			if level&dumplevel.Free != 0 {
				var kept, extra uint64
				for p := range c.maxPFN {
					excl := c.present.Get(p) && !got.Get(p)
					switch {
					case fl.free.Get(p) && !excl:
						kept++
					case !fl.free.Get(p) && excl && level == dumplevel.Free:
						extra++
					}
				}
				if kept != 0 || extra != 0 {
					t.Errorf("level %d: %d free-listed pfns kept, %d pfns not on a free list excluded", level, kept, extra)
				}
				if level == dumplevel.Free && cnt.Free != fl.pages {
					t.Errorf("Counts.Free = %d; the free lists hold %d pages", cnt.Free, fl.pages)
				}
			}

			var slab, tails, other uint64
			for p := range c.maxPFN {
				ours, theirs := got.Get(p), md.Get(p)
				if ours == theirs {
					continue
				}
				rp, err := readPage(c, p)
				if err != nil {
					t.Fatalf("reading the struct page of pfn %#x: %v", p, err)
				}
				if ours { // makedumpfile dropped it
					if level&dumplevel.User != 0 && rp.mapcount == slabType && rp.head&1 == 0 && rp.mapping&1 != 0 {
						slab++
						continue
					}
				} else if rp.head&1 != 0 {
					hpfn := (rp.head - 1 - vmemmap) / sizePage
					hp, err := readPage(c, hpfn)
					if err == nil && hp.flags&headMask != 0 && p > hpfn && p-hpfn < 1<<(hp.tail1Flags&0xff) &&
						!got.Get(hpfn) && !md.Get(hpfn) && c.present.Get(hpfn) &&
						// with only bit 8 of the cache and user bits, the folio must be anonymous
						(level&(dumplevel.Cache|dumplevel.CachePrivate) != 0 || hp.mapping&1 != 0 && hp.mapcount != slabType) {
						tails++
						continue
					}
				}
				if other++; other <= 10 {
					t.Errorf("pfn %#x: ours dumpable=%v, makedumpfile's %v, unexplained: %+v", p, ours, theirs, rp)
				}
			}
			t.Logf("level %d: differs from makedumpfile 1.7.2 at %d pfns: %d slab pages it takes for anon, %d tail pages of folios whose head both drop, %d unexplained",
				level, slab+tails+other, slab, tails, other)
			if level == dumplevel.Free && slab+tails+other != 0 {
				t.Errorf("level 16: differs from makedumpfile at %d pfns; want none", slab+tails+other)
			}
		})
	}
}
