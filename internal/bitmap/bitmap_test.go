// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package bitmap

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// naive is the reference model: one bool per pfn.
type naive []bool

func (n naive) bytes() []byte {
	b := make([]byte, (len(n)+7)/8)
	for i, v := range n {
		if v {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

func TestBitmap(t *testing.T) {
	type op struct {
		kind       string // set, clear, setRange, clearRange
		start, end uint64
	}
	tests := []struct {
		name string
		n    uint64
		ops  []op
	}{
		{"empty", 0, nil},
		{"one bit", 1, []op{{"set", 0, 0}}},
		{"LSB first", 16, []op{{"set", 0, 0}, {"set", 9, 0}}},
		{"range within a byte", 20, []op{{"setRange", 2, 5}}},
		{"range across bytes", 100, []op{{"setRange", 3, 97}, {"clear", 50, 0}}},
		{"range to the end", 77, []op{{"setRange", 0, 77}, {"clearRange", 8, 16}}},
		{"empty range", 10, []op{{"setRange", 5, 5}, {"setRange", 6, 2}}},
		{"large", 1 << 16, []op{{"setRange", 100, 60000}, {"clearRange", 129, 4099}, {"set", 65535, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.n)
			ref := make(naive, tt.n)
			for _, o := range tt.ops {
				switch o.kind {
				case "set":
					b.Set(o.start)
					ref[o.start] = true
				case "clear":
					b.Clear(o.start)
					ref[o.start] = false
				case "setRange", "clearRange":
					if o.kind == "setRange" {
						b.SetRange(o.start, o.end)
					} else {
						b.ClearRange(o.start, o.end)
					}
					for i := o.start; i < o.end; i++ {
						ref[i] = o.kind == "setRange"
					}
				}
			}
			if diff := cmp.Diff(ref.bytes(), b.Bytes()); diff != "" {
				t.Errorf("Bytes() (-want +got):\n%s", diff)
			}
			var count uint64
			next := uint64(0)
			for i, v := range ref {
				if b.Get(uint64(i)) != v {
					t.Fatalf("Get(%d) = %v, want %v", i, !v, v)
				}
				if !v {
					continue
				}
				count++
				if got, ok := b.NextSet(next); !ok || got != uint64(i) {
					t.Fatalf("NextSet(%d) = %d, %v; want %d", next, got, ok, i)
				}
				next = uint64(i) + 1
			}
			if got, ok := b.NextSet(next); ok {
				t.Errorf("NextSet(%d) = %d, want none", next, got)
			}
			if got := b.Count(); got != count {
				t.Errorf("Count() = %d, want %d", got, count)
			}
			if b.Get(tt.n) || b.Get(tt.n+100) {
				t.Errorf("Get past Len() = true")
			}
		})
	}
}

func TestBitmapRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 50 {
		n := uint64(rng.IntN(3000))
		b := New(n)
		ref := make(naive, n)
		for range 20 {
			if n == 0 {
				break
			}
			s, e := uint64(rng.IntN(int(n))), uint64(rng.IntN(int(n)+1))
			set := rng.IntN(2) == 0
			if set {
				b.SetRange(s, e)
			} else {
				b.ClearRange(s, e)
			}
			for i := s; i < e; i++ {
				ref[i] = set
			}
		}
		if diff := cmp.Diff(ref.bytes(), b.Bytes()); diff != "" {
			t.Fatalf("iteration %d (n=%d): Bytes() (-want +got):\n%s", iter, n, diff)
		}
		for from := uint64(0); from <= n; from++ {
			want, wantOK := uint64(0), false
			for i := from; i < n; i++ {
				if ref[i] {
					want, wantOK = i, true
					break
				}
			}
			if got, ok := b.NextSet(from); got != want || ok != wantOK {
				t.Fatalf("iteration %d: NextSet(%d) = %d, %v; want %d, %v", iter, from, got, ok, want, wantOK)
			}
		}
	}
}

func TestBitmapFromBytesClearsTail(t *testing.T) {
	b := FromBytes([]byte{0xff, 0xff}, 12)
	if diff := cmp.Diff([]byte{0xff, 0x0f}, b.Bytes()); diff != "" {
		t.Errorf("Bytes() (-want +got):\n%s", diff)
	}
	if got := b.Count(); got != 12 {
		t.Errorf("Count() = %d, want 12", got)
	}
}

// A window of a bitmap has the bytes of the whole machine's bitmap for its
// pfns, and answers for absolute pfns.
func TestRange(t *testing.T) {
	whole := New(1000)
	win := NewRange(512, 800)
	for _, p := range []uint64{3, 512, 513, 600, 799, 900} {
		whole.Set(p)
		if p >= 512 && p < 800 {
			win.Set(p)
		}
	}
	if got, want := win.Bytes(), whole.Bytes()[64:100]; !bytes.Equal(got, want) {
		t.Errorf("window bytes %x, want %x", got, want)
	}
	if p, ok := win.NextSet(0); !ok || p != 512 {
		t.Errorf("NextSet(0) = %#x, %v; want 512", p, ok)
	}
	if p, ok := win.NextSet(601); !ok || p != 799 {
		t.Errorf("NextSet(601) = %#x, %v; want 799", p, ok)
	}
	if p := win.NextClear(512); p != 514 {
		t.Errorf("NextClear(512) = %d, want 514", p)
	}
	if p := win.NextClear(799); p != 800 {
		t.Errorf("NextClear(799) = %d, want 800 (the end)", p)
	}
	if win.Get(3) || win.Get(900) || !win.Get(600) || win.Count() != 4 || win.Start() != 512 || win.Len() != 800 {
		t.Errorf("Get/Count/Start/Len wrong: %v %v %v %d %d %d", win.Get(3), win.Get(900), win.Get(600), win.Count(), win.Start(), win.Len())
	}
	win.Reset(800, 1000)
	win.SetRange(800, 1000)
	if win.Count() != 200 || win.NextClear(800) != 1000 {
		t.Errorf("after Reset: count %d", win.Count())
	}
}

func TestCountRange(t *testing.T) {
	m := NewRange(64, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		m.Set(64 + uint64(rng.IntN(936)))
	}
	for i := 0; i < 200; i++ {
		a := 64 + uint64(rng.IntN(936))
		z := a + uint64(rng.IntN(int(1000-a)+1))
		var want uint64
		for p := a; p < z; p++ {
			if m.Get(p) {
				want++
			}
		}
		if got := m.CountRange(a, z); got != want {
			t.Fatalf("CountRange(%d, %d) = %d, want %d", a, z, got, want)
		}
	}
}
