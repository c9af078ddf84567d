// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dmTableTypes returns the target types of the table of the device-mapper
// device name, as dmsetup table lists them, through the DM_TABLE_STATUS
// ioctl on control (/dev/mapper/control). It only reads.
func dmTableTypes(control, name string) ([]string, error) {
	if len(name) >= 128 {
		return nil, fmt.Errorf("device-mapper name %q is too long", name)
	}
	f, err := os.OpenFile(control, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	binary.NativeEndian.PutUint32(buf[0:], 4) // version 4.0.0
	binary.NativeEndian.PutUint32(buf[12:], uint32(len(buf)))
	binary.NativeEndian.PutUint32(buf[16:], dmIoctlSize)
	binary.NativeEndian.PutUint32(buf[28:], unix.DM_STATUS_TABLE_FLAG)
	copy(buf[48:], name)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.DM_TABLE_STATUS, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return nil, fmt.Errorf("DM_TABLE_STATUS(%s) on %s: %w", name, control, errno)
	}
	return parseDMTable(buf)
}
