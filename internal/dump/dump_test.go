// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dump_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/dmesg"
	"github.com/ukdump/ukdump/internal/dump"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// dumps writes a synthetic core as ELF, kdump and flat files.
func dumps(t testing.TB) map[string][]byte {
	t.Helper()
	im, err := vmcoretest.Core{Seed: 5}.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := vmcore.Open(im, im.Size())
	if err != nil {
		t.Fatal(err)
	}
	elf := make([]byte, im.Size())
	im.ReadAt(elf, 0)
	out := map[string][]byte{dump.FormatELF: elf}
	for _, format := range []string{collect.FormatKdump, collect.FormatFlat} {
		p := filepath.Join(t.TempDir(), format)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := collect.Collect(context.Background(), im, c, f, collect.Options{Format: format, Codec: "zlib", DumpLevel: 1}); err != nil {
			t.Fatalf("Collect(%s) = %v", format, err)
		}
		f.Close()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[format] = b
	}
	return out
}

func write(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vmcore")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenComplete(t *testing.T) {
	for format, b := range dumps(t) {
		t.Run(format, func(t *testing.T) {
			d, err := dump.Open(write(t, b))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer d.Close()
			in := d.Describe()
			if d.Format != format || !d.Complete() || !in.Complete || in.KernelRelease != "6.1.0-test-amd64" || in.Pages != 1024 {
				t.Errorf("Describe() = %+v, want a complete %s dump of 1024 pages", in, format)
			}
		})
	}
}

// A dump cut anywhere past its headers opens as INCOMPLETE and still reads
// what it holds; cut inside its headers, it gives the error of the reader
// its magic names. Never a panic, never "complete".
func TestOpenTruncated(t *testing.T) {
	for format, b := range dumps(t) {
		for _, n := range []int{4, 15, 17, 64, 200, 4096, 4200, 8192, 20000, len(b) / 3, len(b) / 2, len(b) - 4096, len(b) - 1} {
			d, err := dump.Open(write(t, b[:n]))
			if err != nil {
				if want := map[string]string{dump.FormatELF: "ELF core", dump.FormatKdump: "kdump-compressed", dump.FormatFlat: "flattened"}[format]; n >= 16 && !strings.Contains(err.Error(), want) {
					t.Errorf("%s cut at %d: Open = %v, want the %s reader's reason", format, n, err, want)
				}
				if !errors.Is(err, vmcore.ErrFormat) && !errors.Is(err, kdumpfile.ErrFormat) && n >= 16 {
					t.Errorf("%s cut at %d: Open = %v, want a format error", format, n, err)
				}
				continue
			}
			if d.Complete() {
				t.Errorf("%s cut at %d of %d bytes: Open says complete", format, n, len(b))
			}
			d.Describe()
			if k, err := d.Kernel(); err == nil {
				dmesg.Read(k) //nolint:errcheck // must not panic
			}
			d.Close()
		}
	}
}

// The incomplete marks written while a dump is being written are reported.
func TestOpenMarkedIncomplete(t *testing.T) {
	ds := dumps(t)
	elf := bytes.Clone(ds[dump.FormatELF])
	binary.LittleEndian.PutUint32(elf[48:], 1)
	kd := bytes.Clone(ds[dump.FormatKdump])
	h := binary.LittleEndian.Uint32(kd[kdumpfile.HeaderStatusOffset:])
	binary.LittleEndian.PutUint32(kd[kdumpfile.HeaderStatusOffset:], h|kdumpfile.StatusIncomplete)
	for name, b := range map[string][]byte{"elf e_flags": elf, "kdump status": kd} {
		d, err := dump.Open(write(t, b))
		if err != nil {
			t.Fatalf("%s: Open = %v", name, err)
		}
		if d.Complete() || !strings.Contains(strings.Join(d.Incomplete, " "), "INCOMPLETE") {
			t.Errorf("%s: Incomplete = %q, want the mark reported", name, d.Incomplete)
		}
		d.Close()
	}
}

func TestOpenNotADump(t *testing.T) {
	for name, tt := range map[string]struct {
		data []byte
		want string
	}{
		"empty": {nil, "empty file"},
		"text":  {[]byte(strings.Repeat("hello\n", 100)), `not a dump: it starts with "hello\nhello\nhell"`},
	} {
		if _, err := dump.Open(write(t, tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open = %v, want %q", name, err, tt.want)
		}
	}
	if _, err := dump.Open(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}

// Flipped bits give an error or a description, never a panic.
func TestOpenBitFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := filepath.Join(t.TempDir(), "flipped")
	for format, b := range dumps(t) {
		for range 60 {
			c := bytes.Clone(b)
			for range 1 + rng.IntN(4) {
				// Most flips in the headers, where they matter.
				i := rng.IntN(min(len(c), 8192))
				if rng.IntN(4) == 0 {
					i = rng.IntN(len(c))
				}
				c[i] ^= 1 << rng.IntN(8)
			}
			if err := os.WriteFile(p, c, 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := dump.Open(p)
			if err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("%s: Open = %v, want an error naming the file", format, err)
				}
				continue
			}
			d.Describe()
			if k, err := d.Kernel(); err == nil {
				dmesg.Read(k) //nolint:errcheck // must not panic
			}
			d.Close()
		}
	}
}

// FuzzOpen: whatever a file holds, Open gives an error naming it or a dump
// whose description and kernel reader do not panic.
func FuzzOpen(f *testing.F) {
	for _, b := range dumps(f) {
		f.Add(b[:min(len(b), 16<<10)])
	}
	f.Add([]byte("makedumpfile\x00\x00\x00\x00"))
	f.Add([]byte("KDUMP   "))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	p := filepath.Join(f.TempDir(), "fuzz")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := dump.Open(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("Open = %v: the error does not name the file", err)
			}
			return
		}
		defer d.Close()
		d.Describe()
		if k, err := d.Kernel(); err == nil {
			dmesg.Read(k) //nolint:errcheck // must not panic
		}
	})
}
