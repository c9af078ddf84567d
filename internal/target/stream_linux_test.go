// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package target

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Writes at offsets in three places (as the kdump writer's bitmaps,
// descriptors and data), through the pipelined write-behind, read back as
// written.
func TestStreamFileWriteAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmcore")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newStreamFile(f)
	want := make([]byte, 40<<20)
	chunk := make([]byte, 256<<10)
	for i := 0; i < 40; i++ {
		for j := range chunk {
			chunk[j] = byte(i*7 + j)
		}
		off := int64(i%3)*(12<<20) + int64(i/3)*(256<<10)
		if _, err := s.WriteAt(chunk, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], chunk)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[:len(got)]) || len(got) < 24<<20 {
		t.Errorf("read back %d bytes, differing from what was written", len(got))
	}
}
