// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dm

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestABI checks our copies of the ioctl numbers and of the struct layout
// against golang.org/x/sys/unix's, which are generated from the kernel's
// headers.
func TestABI(t *testing.T) {
	for _, tt := range []struct {
		name      string
		ours, sys uint64
	}{
		{"DM_DEV_CREATE", cmdDevCreate, unix.DM_DEV_CREATE},
		{"DM_DEV_REMOVE", cmdDevRemove, unix.DM_DEV_REMOVE},
		{"DM_DEV_SUSPEND", cmdDevSuspend, unix.DM_DEV_SUSPEND},
		{"DM_TABLE_LOAD", cmdTableLoad, unix.DM_TABLE_LOAD},
		{"DM_TABLE_STATUS", cmdTableStat, unix.DM_TABLE_STATUS},
		{"DM_READONLY_FLAG", flagReadOnly, unix.DM_READONLY_FLAG},
		{"DM_STATUS_TABLE_FLAG", flagStatusTable, unix.DM_STATUS_TABLE_FLAG},
		{"DM_BUFFER_FULL_FLAG", flagBufferFull, unix.DM_BUFFER_FULL_FLAG},
		{"DM_NAME_LEN", nameLen, unix.DM_NAME_LEN},
		{"DM_UUID_LEN", uuidLen, unix.DM_UUID_LEN},
		{"DM_MAX_TYPE_NAME", typeLen, unix.DM_MAX_TYPE_NAME},
		{"sizeof(struct dm_ioctl)", sizeofIoctl, unix.SizeofDmIoctl},
		{"sizeof(struct dm_target_spec)", sizeofTargetSpec, unix.SizeofDmTargetSpec},
		{"dm_ioctl.data_size", offDataSize, uint64(unsafe.Offsetof(unix.DmIoctl{}.Data_size))},
		{"dm_ioctl.data_start", offDataStart, uint64(unsafe.Offsetof(unix.DmIoctl{}.Data_start))},
		{"dm_ioctl.target_count", offTargetCount, uint64(unsafe.Offsetof(unix.DmIoctl{}.Target_count))},
		{"dm_ioctl.flags", offFlags, uint64(unsafe.Offsetof(unix.DmIoctl{}.Flags))},
		{"dm_ioctl.dev", offDev, uint64(unsafe.Offsetof(unix.DmIoctl{}.Dev))},
		{"dm_ioctl.name", offName, uint64(unsafe.Offsetof(unix.DmIoctl{}.Name))},
		{"dm_ioctl.uuid", offUUID, uint64(unsafe.Offsetof(unix.DmIoctl{}.Uuid))},
		{"dm_target_spec.next", 20, uint64(unsafe.Offsetof(unix.DmTargetSpec{}.Next))},
		{"dm_target_spec.target_type", 24, uint64(unsafe.Offsetof(unix.DmTargetSpec{}.Target_type))},
	} {
		if tt.ours != tt.sys {
			t.Errorf("%s = %#x, x/sys/unix says %#x", tt.name, tt.ours, tt.sys)
		}
	}
}
