// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package target

import (
	"errors"
	"os"
)

// Elsewhere than Linux the capture does not run; files are plain files.
func newStreamFile(f *os.File) *os.File { return f }

func (l *localDir) Free() (int64, error) {
	return 0, errors.New("free space: only implemented on Linux")
}
