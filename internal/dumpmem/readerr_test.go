// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dumpmem

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// eioReader fails every read with EIO.
type eioReader struct{}

func (eioReader) ReadAt(p []byte, off int64) (int, error) { return 0, syscall.EIO }

func TestFromELFReadError(t *testing.T) {
	c := &vmcore.Core{Loads: []vmcore.Phdr{{Offset: 512, Paddr: 0x20000, Filesz: 256, Memsz: 512}}}
	err := FromELF(eioReader{}, c).ReadPhys(make([]byte, 4), 0x20000)
	if !errors.Is(err, syscall.EIO) || errors.Is(err, vmcore.ErrFormat) || errors.Is(err, ErrNotInDump) {
		t.Errorf("ReadPhys on a failing reader = %v, want EIO (not ErrFormat, not ErrNotInDump)", err)
	}
	// The file ends inside the PT_LOAD: a truncated core.
	err = FromELF(bytes.NewReader(make([]byte, 600)), c).ReadPhys(make([]byte, 200), 0x20000)
	if !errors.Is(err, vmcore.ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadPhys past the end of the file = %v, want ErrFormat and io.ErrUnexpectedEOF", err)
	}
}
