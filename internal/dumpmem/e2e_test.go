// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

// The tests on the QEMU end-to-end run's vmcore: make test runs them with the
// interop tag after make e2e.

package dumpmem

import (
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/vmcore"
)

const e2eVmcore = "../../out/e2e/dump/vmcore"

// OpenE2E opens the e2e ELF vmcore as a Kernel.
func openE2E(t *testing.T) *Kernel {
	t.Helper()
	f, err := vmcore.OpenFile(e2eVmcore)
	if err != nil {
		t.Fatalf("%v: run make e2e first", err)
	}
	t.Cleanup(func() { f.Close() })
	c, err := vmcore.Open(f, f.Size())
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKernel(FromELF(f, c), c.Info, c.Loads)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestE2EUtsname(t *testing.T) {
	k := openE2E(t)
	sym, ok := k.Info.Symbol("init_uts_ns")
	if !ok {
		t.Fatal("no SYMBOL(init_uts_ns)")
	}
	off, _ := k.Info.Offset("uts_namespace.name")
	va := sym + uint64(off)
	short, err := k.VtoP(va)
	if err != nil {
		t.Fatal(err)
	}
	walked, err := k.Walk(va)
	if err != nil {
		t.Fatal(err)
	}
	if short != walked {
		t.Errorf("VtoP(%#x) = %#x, Walk = %#x", va, short, walked)
	}
	// The direct-map alias of the same memory: both paths agree.
	dm := k.PageOffset + walked
	if pa, err := k.Walk(dm); err != nil || pa != walked {
		t.Errorf("Walk(direct map %#x) = %#x, %v; want %#x", dm, pa, err, walked)
	}
	for _, pa := range []uint64{short, walked} {
		b := make([]byte, 65*2) // sysname, nodename
		if err := k.Mem.ReadPhys(b, pa); err != nil {
			t.Fatal(err)
		}
		b2 := make([]byte, 65)
		if err := k.Mem.ReadPhys(b2, pa+65*2); err != nil {
			t.Fatal(err)
		}
		sys, _, _ := strings.Cut(string(b[:65]), "\x00")
		rel, _, _ := strings.Cut(string(b2), "\x00")
		if sys != "Linux" || rel != k.Info.OSRelease() {
			t.Errorf("utsname at %#x = %q %q; want %q %q", pa, sys, rel, "Linux", k.Info.OSRelease())
		}
	}
	t.Logf("phys_base %#x page_offset %#x l5 %v pgd %#x", k.PhysBase, k.PageOffset, k.L5, k.PGD)
}

func TestE2EPageOffsetFromTables(t *testing.T) {
	k := openE2E(t)
	k2, err := NewKernel(k.Mem, k.Info, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k2.PageOffset != k.PageOffset {
		t.Errorf("page_offset_base from page tables %#x, from PT_LOAD %#x", k2.PageOffset, k.PageOffset)
	}
}
