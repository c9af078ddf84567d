// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The layout parseDMTable reads is the one DM_TABLE_STATUS writes.
func TestDMIoctlLayout(t *testing.T) {
	if size := unix.DM_TABLE_STATUS >> 16 & 0x3fff; size != dmIoctlSize || unix.DM_BUFFER_FULL_FLAG != dmBufferFull {
		t.Errorf("DM_TABLE_STATUS carries a %d-byte struct dm_ioctl and DM_BUFFER_FULL_FLAG is %#x; want %d and %#x",
			size, unix.DM_BUFFER_FULL_FLAG, dmIoctlSize, dmBufferFull)
	}
	if _, err := dmTableTypes(filepath.Join(t.TempDir(), "control"), "vg0-crash"); err == nil {
		t.Errorf("dmTableTypes() without a control node = nil, want an error")
	}
}
