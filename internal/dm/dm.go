// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package dm creates and removes device-mapper devices with the kernel's
// ioctls on /dev/mapper/control.
//
// The ioctl structures are marshalled here, from the kernel's
// include/uapi/linux/dm-ioctl.h (interface version 4): the Go libraries
// that do this are either not served by the module proxy
// (github.com/anatol/devmapper.go), internal to another program
// (hcsshim's), or wrap the C libdevmapper or the dmsetup command, and all we
// need is five ioctls and a layout that interface version 4 keeps
// compatible.
// golang.org/x/sys/unix has the numbers (DM_DEV_CREATE...) but only for
// Linux; the copies below are checked against it in the Linux tests.
package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ukdump/ukdump/internal/cstr"
)

// Target is one line of a device-mapper table, as dmsetup shows it:
// "0 32768 linear 7:0 2048".
type Target struct {
	// Start and Length are in 512-byte sectors.
	Start, Length uint64
	// Type is the target type: "linear", "striped"...
	Type string
	// Params are the target's arguments: "7:0 2048" for linear.
	Params string
}

func (t Target) String() string {
	return fmt.Sprintf("%d %d %s %s", t.Start, t.Length, t.Type, t.Params)
}

// The layout of struct dm_ioctl (312 bytes) and struct dm_target_spec (40
// bytes, then its NUL-terminated parameters, padded to 8 bytes).
const (
	sizeofIoctl      = 312
	sizeofTargetSpec = 40
	nameLen          = 128 // DM_NAME_LEN, with the NUL
	uuidLen          = 129 // DM_UUID_LEN, with the NUL
	typeLen          = 16  // DM_MAX_TYPE_NAME, with the NUL

	offVersion     = 0  // u32[3]
	offDataSize    = 12 // u32: the whole buffer
	offDataStart   = 16 // u32: where the targets start
	offTargetCount = 20 // u32
	offFlags       = 28 // u32
	offDev         = 40 // u64: the kernel's encoding of the device number
	offName        = 48
	offUUID        = 176

	flagReadOnly    = 1      // DM_READONLY_FLAG
	flagStatusTable = 1 << 4 // DM_STATUS_TABLE_FLAG
	flagBufferFull  = 1 << 8 // DM_BUFFER_FULL_FLAG
)

// The ioctl numbers: _IOWR(0xfd, nr, struct dm_ioctl).
const (
	cmdDevCreate  = 0xc138fd03
	cmdDevRemove  = 0xc138fd04
	cmdDevSuspend = 0xc138fd06 // without DM_SUSPEND_FLAG: resume
	cmdTableLoad  = 0xc138fd09
	cmdTableStat  = 0xc138fd0c
)

// Dev is a device-mapper device that Create made.
type Dev struct {
	Name string
	// Path is its node: /dev/mapper/NAME.
	Path         string
	Major, Minor uint32
}

// Control creates and removes devices. Its zero value uses the kernel's
// /dev/mapper/control and makes nodes in /dev/mapper.
type Control struct {
	// ControlPath is the control node; "" is /dev/mapper/control.
	ControlPath string
	// Dir is where Create makes device nodes; "" is /dev/mapper.
	Dir string
	// Ioctl issues one ioctl: buf is struct dm_ioctl and its data, and the
	// kernel writes its answer back into it. nil is the real one, on the
	// control node.
	Ioctl func(cmd uint32, buf []byte) error
	// Mknod makes a block device node; nil is mknod(2).
	Mknod func(path string, major, minor uint32) error
}

func (c Control) ioctl(cmd uint32, buf []byte) error {
	if c.Ioctl != nil {
		return c.Ioctl(cmd, buf)
	}
	p := c.ControlPath
	if p == "" {
		p = "/dev/mapper/control"
	}
	return ioctl(p, cmd, buf)
}

func (c Control) dir() string {
	if c.Dir == "" {
		return "/dev/mapper"
	}
	return c.Dir
}

// Create makes the device name with the dm UUID uuid and the table targets
// (read-only if readOnly) and its node in Dir. Its steps:
//   - DM_DEV_CREATE (name, uuid),
//   - DM_TABLE_LOAD (the targets, into the inactive table),
//   - DM_DEV_SUSPEND without the suspend flag: resume, making that table
//     live,
//   - mknod Dir/name for the device number the kernel gave.
//
// If a step after the first fails, the device is removed again.
func (c Control) Create(name, uuid string, readOnly bool, targets []Target) (Dev, error) {
	if len(targets) == 0 {
		return Dev{}, fmt.Errorf("dm: %s: no targets", name)
	}
	var flags uint32
	if readOnly {
		flags = flagReadOnly
	}
	create, err := marshal(name, uuid, 0, nil)
	if err != nil {
		return Dev{}, err
	}
	load, err := marshal(name, "", flags, targets)
	if err != nil {
		return Dev{}, err
	}
	if err := c.ioctl(cmdDevCreate, create); err != nil {
		return Dev{}, fmt.Errorf("dm: DM_DEV_CREATE(%s, uuid %s) = %w", name, uuid, err)
	}
	d := devNumber(binary.LittleEndian.Uint64(create[offDev:]))
	d.Name = name
	d.Path = filepath.Join(c.dir(), name)
	undo := func(err error) (Dev, error) {
		if rerr := c.remove(name); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Dev{}, err
	}
	if err := c.ioctl(cmdTableLoad, load); err != nil {
		return undo(fmt.Errorf("dm: DM_TABLE_LOAD(%s, %q) = %w", name, targets, err))
	}
	resume, _ := marshal(name, "", 0, nil) // name was checked above
	if err := c.ioctl(cmdDevSuspend, resume); err != nil {
		return undo(fmt.Errorf("dm: DM_DEV_SUSPEND(%s, resume) = %w", name, err))
	}
	if err := c.mknod(d); err != nil {
		return undo(err)
	}
	return d, nil
}

// mknod makes d's node, replacing whatever has its name.
func (c Control) mknod(d Dev) error {
	if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
		return fmt.Errorf("dm: %w", err)
	}
	if err := os.Remove(d.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dm: %w", err)
	}
	mk := c.Mknod
	if mk == nil {
		mk = mknod
	}
	if err := mk(d.Path, d.Major, d.Minor); err != nil {
		return &os.PathError{Op: "mknod", Path: d.Path, Err: fmt.Errorf("block %d:%d: %w", d.Major, d.Minor, err)}
	}
	return nil
}

// Remove removes the device name (DM_DEV_REMOVE) and its node in Dir.
func (c Control) Remove(name string) error {
	if err := c.remove(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(c.dir(), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dm: %w", err)
	}
	return nil
}

func (c Control) remove(name string) error {
	buf, err := marshal(name, "", 0, nil)
	if err != nil {
		return err
	}
	if err := c.ioctl(cmdDevRemove, buf); err != nil {
		return fmt.Errorf("dm: DM_DEV_REMOVE(%s) = %w", name, err)
	}
	return nil
}

// TableTypes returns the target types ("linear", "striped", "crypt"...)
// of the live table of the device name, in table order (DM_TABLE_STATUS
// with DM_STATUS_TABLE_FLAG).
func (c Control) TableTypes(name string) ([]string, error) {
	head, err := marshal(name, "", flagStatusTable, nil)
	if err != nil {
		return nil, err
	}
	// The answer overwrites the request: room for a table of many targets.
	buf := make([]byte, 16<<10)
	copy(buf, head)
	binary.LittleEndian.PutUint32(buf[offDataSize:], uint32(len(buf)))
	if err := c.ioctl(cmdTableStat, buf); err != nil {
		return nil, fmt.Errorf("dm: DM_TABLE_STATUS(%s) = %w", name, err)
	}
	types, err := parseTableTypes(buf)
	if err != nil {
		return nil, fmt.Errorf("dm: DM_TABLE_STATUS(%s): %w", name, err)
	}
	return types, nil
}

// parseTableTypes reads the target types of a DM_TABLE_STATUS answer: the
// struct dm_ioctl, then from its data_start target_count struct
// dm_target_spec, each followed by its parameters. Unlike DM_TABLE_LOAD's
// input, an answer's next is the offset of the following spec from
// data_start, not from this spec.
func parseTableTypes(buf []byte) ([]string, error) {
	if len(buf) < sizeofIoctl {
		return nil, fmt.Errorf("table: %d bytes, want at least %d", len(buf), sizeofIoctl)
	}
	le := binary.LittleEndian
	if le.Uint32(buf[offFlags:])&flagBufferFull != 0 {
		return nil, errors.New("table: larger than the buffer")
	}
	start, count := int(le.Uint32(buf[offDataStart:])), int(le.Uint32(buf[offTargetCount:]))
	var types []string
	for i, off := 0, start; i < count; i++ {
		if off < start || off+sizeofTargetSpec > len(buf) {
			return nil, fmt.Errorf("table: target %d at %d outside the %d bytes", i, off, len(buf))
		}
		spec := buf[off : off+sizeofTargetSpec]
		types = append(types, cstr.String(spec[24:24+typeLen]))
		off = start + int(le.Uint32(spec[20:]))
	}
	return types, nil
}

// marshal lays out struct dm_ioctl for interface version 4.0.0 with name,
// uuid and flags, followed by a struct dm_target_spec and the parameters of
// each target.
func marshal(name, uuid string, flags uint32, targets []Target) ([]byte, error) {
	if name == "" || len(name) >= nameLen || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("dm: bad device name %q (1 to %d bytes, no '/')", name, nameLen-1)
	}
	if len(uuid) >= uuidLen || strings.ContainsRune(uuid, 0) {
		return nil, fmt.Errorf("dm: %s: uuid %q is longer than %d bytes", name, uuid, uuidLen-1)
	}
	size := sizeofIoctl
	for _, t := range targets {
		if t.Type == "" || len(t.Type) >= typeLen || strings.ContainsRune(t.Type+t.Params, 0) {
			return nil, fmt.Errorf("dm: %s: bad target %q", name, t)
		}
		size += specSize(t)
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], 4) // minor and patch level 0: any 4.x kernel
	le.PutUint32(b[offDataSize:], uint32(size))
	le.PutUint32(b[offDataStart:], sizeofIoctl)
	le.PutUint32(b[offTargetCount:], uint32(len(targets)))
	le.PutUint32(b[offFlags:], flags)
	copy(b[offName:], name)
	copy(b[offUUID:], uuid)
	off := sizeofIoctl
	for _, t := range targets {
		n := specSize(t)
		s := b[off : off+n]
		le.PutUint64(s[0:], t.Start)
		le.PutUint64(s[8:], t.Length)
		le.PutUint32(s[20:], uint32(n)) // next: from this spec to the next one
		copy(s[24:], t.Type)
		copy(s[sizeofTargetSpec:], t.Params)
		off += n
	}
	return b, nil
}

// specSize is the size of t's dm_target_spec with its parameters and their
// NUL, padded to 8 bytes.
func specSize(t Target) int { return (sizeofTargetSpec + len(t.Params) + 1 + 7) &^ 7 }

// devNumber decodes the kernel's encoding of a device number
// (huge_encode_dev: minor bits 0-7 and 20-31, major bits 8-19).
func devNumber(dev uint64) Dev {
	return Dev{Major: uint32(dev>>8) & 0xfff, Minor: uint32(dev&0xff) | uint32(dev>>12)&0xfff00}
}
