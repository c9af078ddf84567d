// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package target

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func (l *localDir) Free() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(l.root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", l.root, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
