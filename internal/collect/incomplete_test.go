// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package collect_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/kdumpfile"
)

// dyingFile is a dump file whose writer "dies" after limit bytes: the write
// that crosses it fails, as if the process had been killed there, and the
// file is left as it is. It records what the header said at that moment.
type dyingFile struct {
	*os.File
	n, limit int64
	syncs    int
}

var errKilled = errors.New("killed")

func (f *dyingFile) Write(p []byte) (int, error) {
	if f.n+int64(len(p)) > f.limit {
		return 0, errKilled
	}
	n, err := f.File.Write(p)
	f.n += int64(n)
	return n, err
}

func (f *dyingFile) WriteAt(p []byte, off int64) (int, error) {
	if off > 0 && f.n+int64(len(p)) > f.limit { // header rewrites still work
		return 0, errKilled
	}
	n, err := f.File.WriteAt(p, off)
	f.n += int64(n)
	return n, err
}

func (f *dyingFile) Sync() error { f.syncs++; return f.File.Sync() }

// incomplete reports whether the dump file at path says it is incomplete.
func incomplete(t *testing.T, path, format string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if format == collect.FormatKdump {
		kf, err := kdumpfile.Open(f)
		if err != nil {
			t.Fatalf("kdumpfile.Open(%s) = %v", path, err)
		}
		return kf.Incomplete()
	}
	var h [64]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(h[48:])&1 != 0
}

// Every dump carries its incomplete mark until the end: a writer killed
// part-way leaves a file that says so; a finished one is clean.
func TestIncompleteMarkUntilTheEnd(t *testing.T) {
	im, c, _ := build(t)
	for _, tt := range []struct {
		format string
		level  int
	}{{collect.FormatELF, 0}, {collect.FormatELF, 1}, {collect.FormatKdump, 1}, {collect.FormatKdump, 0}} {
		for _, kill := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/d%d/killed=%v", tt.format, tt.level, kill), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "vmcore")
				os.WriteFile(path, nil, 0o600)
				of, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer of.Close()
				f := &dyingFile{File: of, limit: 1 << 40}
				if kill {
					f.limit = 2 << 20 // well inside the 6 MiB core
				}
				_, err = collect.Collect(context.Background(), im, c, f, collect.Options{Format: tt.format, DumpLevel: tt.level, Codec: "none", ChunkSize: 1 << 20})
				if kill != (err != nil) {
					t.Fatalf("Collect = %v, killed %v", err, kill)
				}
				if got := incomplete(t, path, tt.format); got != kill {
					t.Errorf("the dump says incomplete = %v, want %v", got, kill)
				}
				if !kill && f.syncs == 0 {
					t.Errorf("the dump was marked complete without a sync of its data")
				}
			})
		}
	}
}
