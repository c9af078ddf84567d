// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/cli"
	"github.com/ukdump/ukdump/internal/dump"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

// badDumps writes an ELF core, a kdump file and a flattened one, then
// truncated, bit-flipped and empty variants of each.
func badDumps(t *testing.T) (good map[string]string, bad map[string]string) {
	t.Helper()
	dir := t.TempDir()
	core := filepath.Join(dir, "elf")
	if _, err := (vmcoretest.Core{Seed: 3}).WriteFile(core); err != nil {
		t.Fatal(err)
	}
	good = map[string]string{"elf": core, "kdump": filepath.Join(dir, "kdump"), "flat": filepath.Join(dir, "flat")}
	for _, f := range []string{"kdump", "flat"} {
		if _, stderr, err := run(t, "collect", "-q", "--format", f, "--compress", "zlib", core, good[f]); err != nil {
			t.Fatalf("collect --format %s = %v\n%s", f, err, stderr)
		}
	}
	bad = map[string]string{}
	for name, p := range good {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		variants := map[string][]byte{
			"empty":        nil,
			"cut-header":   b[:100],
			"cut-early":    b[:6000],
			"cut-half":     b[:len(b)/2],
			"cut-end":      b[:len(b)-10],
			"flipped-head": flip(b, 8, 48, 424, 4100),
			"flipped-body": flip(b, len(b)/2, len(b)/2+1000, len(b)-3000),
		}
		for v, data := range variants {
			vp := filepath.Join(dir, name+"-"+v)
			if err := os.WriteFile(vp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			bad[name+"-"+v] = vp
		}
	}
	return good, bad
}

func flip(b []byte, at ...int) []byte {
	c := append([]byte(nil), b...)
	for _, i := range at {
		c[i] ^= 0x5a
	}
	return c
}

// Truncated, bit-flipped and empty dumps given to info, dmesg, reassemble
// and collect: a clear error or an INCOMPLETE report, never a panic; a cut
// or empty file is never "complete".
func TestBadDumps(t *testing.T) {
	good, bad := badDumps(t)
	for name, p := range good {
		out, _, err := run(t, "info", "--json", p)
		var in dump.Description
		if err != nil || json.Unmarshal([]byte(out), &in) != nil || !in.Complete {
			t.Fatalf("info %s = %v, %s; want complete", name, err, out)
		}
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			cut := strings.Contains(name, "-cut-") || strings.HasSuffix(name, "-empty")
			out, stderr, err := run(t, "info", "--json", p)
			if err == nil {
				var in dump.Description
				if jerr := json.Unmarshal([]byte(out), &in); jerr != nil {
					t.Fatalf("info --json: %v\n%s", jerr, out)
				}
				if cut && in.Complete {
					t.Errorf("info says a cut file is complete: %+v", in)
				}
				if !in.Complete && !strings.Contains(stderr, "INCOMPLETE") {
					t.Errorf("info on an incomplete dump does not warn: %q", stderr)
				}
			} else if !strings.Contains(err.Error(), p) {
				t.Errorf("info = %v, want an error naming %s", err, p)
			}
			if text, _, err := run(t, "info", p); err == nil && cut && !strings.Contains(text, "INCOMPLETE") {
				t.Errorf("info (text) on a cut file:\n%s", text)
			}
			if _, stderr, err := run(t, "dmesg", p); err == nil && cut {
				t.Errorf("dmesg on a cut synthetic dump succeeded (stderr %q)", stderr)
			} else if err != nil && !strings.Contains(err.Error(), "dmesg: ") {
				t.Errorf("dmesg = %v", err)
			}
			if strings.HasPrefix(name, "flat-") {
				re := filepath.Join(t.TempDir(), "re")
				_, _, err := run(t, "reassemble", p, re)
				if cut && err == nil {
					t.Errorf("reassemble of a cut stream succeeded")
				}
				if _, serr := os.Stat(re); err != nil && serr == nil {
					// What a cut stream held: never "complete" unless the
					// stream's final header arrived (only its end record is cut).
					if out, _, ierr := run(t, "info", "--json", re); ierr == nil && strings.Contains(out, `"complete": true`) && !strings.HasSuffix(name, "-cut-end") {
						t.Errorf("the reassembled cut stream says complete:\n%s", out)
					}
				}
			}
			if strings.HasPrefix(name, "elf-") {
				o := filepath.Join(t.TempDir(), "o")
				_, _, err := run(t, "collect", "-q", p, o)
				if cut && err == nil {
					t.Errorf("collect from a cut core succeeded")
				}
				if err != nil && !strings.Contains(err.Error(), p) {
					t.Errorf("collect = %v, want an error naming %s", err, p)
				}
			}
		})
	}
}

// collect writes OUT.incomplete and renames it when whole; stopped, it keeps
// OUT.incomplete, marked incomplete, and fails.
func TestCollectIncompleteAndRenamed(t *testing.T) {
	dir := t.TempDir()
	core := filepath.Join(dir, "vmcore")
	if _, err := (vmcoretest.Core{}).WriteFile(core); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dump")
	if _, stderr, err := run(t, "collect", "-q", core, out); err != nil {
		t.Fatalf("collect = %v\n%s", err, stderr)
	}
	if _, err := os.Stat(out + ".incomplete"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.incomplete left after a complete collect: %v", out, err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupted by signal terminated"))
	out2 := filepath.Join(dir, "dump2")
	var o, e strings.Builder
	err := cli.Context{Args: []string{"collect", "-q", core, out2}, Stdout: &o, Stderr: &e, Ctx: ctx}.Execute()
	if err == nil || !strings.Contains(err.Error(), "interrupted by signal terminated") || !strings.Contains(err.Error(), out2+".incomplete") {
		t.Fatalf("collect with a cancelled context = %v, want the signal and where the partial dump is", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after an interrupted collect", out2)
	}
	info, stderr, err := run(t, "info", out2+".incomplete")
	if err != nil || !strings.Contains(info, "INCOMPLETE") || !strings.Contains(stderr, "INCOMPLETE") {
		t.Errorf("info on the interrupted dump = %v:\n%s%s", err, info, stderr)
	}
}

// sparseCore writes an ELF core of size bytes of (mostly hole) memory: a
// small synthetic core whose PT_LOAD is stretched over a sparse file.
func sparseCore(t *testing.T, size uint64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.vmcore")
	if _, err := (vmcoretest.Core{Segments: [][2]uint64{{0, 1 << 20}}}).WriteFile(p); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [64]byte
	f.ReadAt(h[:], 0)
	le := binary.LittleEndian
	phoff, phnum := le.Uint64(h[32:]), int(le.Uint16(h[56:]))
	for i := range phnum {
		var ph [56]byte
		f.ReadAt(ph[:], int64(phoff)+int64(i*56))
		if le.Uint32(ph[0:]) != 1 { // PT_LOAD
			continue
		}
		le.PutUint64(ph[32:], size)
		le.PutUint64(ph[40:], size)
		if _, err := f.WriteAt(ph[:], int64(phoff)+int64(i*56)); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(int64(le.Uint64(ph[8:]) + size)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// A real SIGTERM stops collect part-way (SignalContext): OUT.incomplete is
// kept, marked incomplete, and the error names the signal.
func TestCollectSIGTERM(t *testing.T) {
	core := sparseCore(t, 8<<30) // 8 GiB of memory: seconds of work at least
	out := filepath.Join(t.TempDir(), "dump")
	ctx, stop := cli.SignalContext(context.Background())
	defer stop()
	go func() {
		for range 500 {
			if fi, err := os.Stat(out + ".incomplete"); err == nil && fi.Size() > 0 {
				syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var o, e strings.Builder
	start := time.Now()
	err := cli.Context{Args: []string{"collect", "-q", "-d", "0", "--compress", "zstd", core, out}, Stdout: &o, Stderr: &e, Ctx: ctx}.Execute()
	if err == nil || !strings.Contains(err.Error(), "interrupted by signal terminated") {
		t.Fatalf("collect after SIGTERM = %v (after %s), want interrupted", err, time.Since(start))
	}
	f, ferr := os.Open(out + ".incomplete")
	if ferr != nil {
		t.Fatalf("the partial dump was not kept: %v", ferr)
	}
	defer f.Close()
	kf, kerr := kdumpfile.Open(f)
	if kerr != nil || !kf.Incomplete() {
		t.Errorf("the partial dump: %v, incomplete %v; want a kdump file marked incomplete", kerr, kerr == nil && kf.Incomplete())
	}
	fmt.Fprintln(os.Stderr, "collect stopped by SIGTERM after", time.Since(start).Round(time.Millisecond))
}
