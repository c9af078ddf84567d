// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dmesg

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/ukdump/ukdump/internal/dumpmem"
)

// failMem is a Mem whose n-th ReadPhys call (counting from 1; 0: none)
// fails with EIO; calls counts the calls.
type failMem struct {
	m     dumpmem.Mem
	n     int
	calls int
}

func (f *failMem) ReadPhys(p []byte, paddr uint64) error {
	f.calls++
	if f.calls == f.n {
		return fmt.Errorf("failMem: %d bytes at %#x: %w", len(p), paddr, syscall.EIO)
	}
	return f.m.ReadPhys(p, paddr)
}

func TestReadMemError(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    *dumpmem.Kernel
	}{
		{"lockless", buildLockless(0, 0, []rec{{text: "hello"}, {text: "world"}})},
		{"legacy", buildLegacy(256, 0, 64, []legacyRec{{at: 0, len: 32, text: "one"}, {at: 32, len: 32, text: "two"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := &failMem{m: tc.k.Mem}
			k := *tc.k
			k.Mem = count
			if _, err := Read(&k); err != nil {
				t.Fatalf("Read = %v", err)
			}
			for n := 1; n <= count.calls; n++ {
				k.Mem = &failMem{m: tc.k.Mem, n: n}
				if _, err := Read(&k); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrCorrupt) {
					t.Errorf("Read (read %d fails) = %v, want EIO and not ErrCorrupt", n, err)
				}
			}
		})
	}
}
