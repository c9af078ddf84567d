// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dm

// The real ioctls need a kernel with device-mapper and root; the machine
// these tests were written on has neither (no dm in /proc/devices), so
// they are tested here with an injected Ioctl and Mknod, and for real in a
// QEMU guest by the end-to-end tests.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/cstr"
)

// layout is a dm_ioctl buffer written field by field at the offsets of
// include/uapi/linux/dm-ioctl.h, independently of marshal.
type layout []byte

func (l layout) u32(off int, v uint32) layout { binary.LittleEndian.PutUint32(l[off:], v); return l }
func (l layout) u64(off int, v uint64) layout { binary.LittleEndian.PutUint64(l[off:], v); return l }
func (l layout) str(off int, s string) layout { copy(l[off:], s); return l }

func TestMarshal(t *testing.T) {
	// DM_DEV_CREATE: the header only, 312 bytes.
	want := layout(make([]byte, 312)).
		u32(0, 4).u32(4, 0).u32(8, 0). // version 4.0.0
		u32(12, 312).                  // data_size
		u32(16, 312).                  // data_start
		str(48, "my--vg-root").        // name[128]
		str(176, "LVM-abc")            // uuid[129]
	got, err := marshal("my--vg-root", "LVM-abc", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("marshal(create) (-want, +got):\n%s", diff)
	}

	// DM_TABLE_LOAD, read-only, two targets. The first spec: 40 bytes,
	// "7:1 2048" and its NUL (9) = 49, padded to 56; the second: 40 +
	// "2 128 7:1 2048 7:2 2048" (23) + 1 = 64.
	want = layout(make([]byte, 312+56+64)).
		u32(0, 4).
		u32(12, 312+56+64). // data_size
		u32(16, 312).       // data_start
		u32(20, 2).         // target_count
		u32(28, 1).         // flags: DM_READONLY_FLAG
		str(48, "vg-lv").
		// spec 1 at 312
		u64(312, 0).u64(320, 98304). // sector_start, length
		u32(332, 56).                // next
		str(336, "linear").          // target_type[16]
		str(352, "7:1 2048").        // parameters
		// spec 2 at 368
		u64(368, 98304).u64(376, 65536).
		u32(388, 64).
		str(392, "striped").
		str(408, "2 128 7:1 2048 7:2 2048")
	got, err = marshal("vg-lv", "", 1, []Target{
		{Start: 0, Length: 98304, Type: "linear", Params: "7:1 2048"},
		{Start: 98304, Length: 65536, Type: "striped", Params: "2 128 7:1 2048 7:2 2048"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte(want), got); diff != "" {
		t.Errorf("marshal(load) (-want, +got):\n%s", diff)
	}
}

func TestMarshalErrors(t *testing.T) {
	for _, tt := range []struct {
		name, uuid string
		targets    []Target
		want       string
	}{
		{"", "", nil, `bad device name ""`},
		{strings.Repeat("a", 128), "", nil, `bad device name`},
		{"a/b", "", nil, `bad device name "a/b"`},
		{"..", "", nil, `bad device name`},
		{"a", strings.Repeat("u", 129), nil, `uuid .* is longer than 128 bytes`},
		{"a", "", []Target{{Type: strings.Repeat("t", 16)}}, `bad target`},
		{"a", "", []Target{{Type: "linear", Params: "x\x00"}}, `bad target`},
	} {
		if _, err := marshal(tt.name, tt.uuid, 0, tt.targets); err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
			t.Errorf("marshal(%.10q, %.10q, %v) = %v, want %q", tt.name, tt.uuid, tt.targets, err, tt.want)
		}
	}
	// At the limits: 127 bytes of name, 128 of uuid.
	if _, err := marshal(strings.Repeat("a", 127), strings.Repeat("u", 128), 0, nil); err != nil {
		t.Errorf("marshal(127-byte name, 128-byte uuid) = %v", err)
	}
}

func TestDevNumber(t *testing.T) {
	for _, tt := range []struct {
		dev          uint64
		major, minor uint32
	}{
		{253<<8 | 3, 253, 3},
		// minor 300 = 0x12c: low byte 0x2c in bits 0-7, 0x100 in bits 20+.
		{0x2c | 253<<8 | 0x100<<12, 253, 300},
		{0xfff<<8 | 0xff | 0xfff00<<12, 4095, 0xfffff},
	} {
		if d := devNumber(tt.dev); d.Major != tt.major || d.Minor != tt.minor {
			t.Errorf("devNumber(%#x) = %d:%d, want %d:%d", tt.dev, d.Major, d.Minor, tt.major, tt.minor)
		}
	}
}

// fake is a kernel for Control: it records the ioctls and answers
// DM_DEV_CREATE with dev, and fails the command fail with EINVAL.
type fake struct {
	cmds  []uint32
	names []string
	bufs  [][]byte
	dev   uint64
	fail  uint32
	nodes []string
}

func (f *fake) control(dir string) Control {
	return Control{
		Dir: dir,
		Ioctl: func(cmd uint32, buf []byte) error {
			f.cmds = append(f.cmds, cmd)
			f.names = append(f.names, strings.TrimRight(string(buf[48:176]), "\x00"))
			f.bufs = append(f.bufs, append([]byte(nil), buf...))
			if cmd == f.fail {
				return syscall.EINVAL
			}
			if cmd == cmdDevCreate {
				binary.LittleEndian.PutUint64(buf[40:], f.dev)
			}
			return nil
		},
		Mknod: func(path string, major, minor uint32) error {
			f.nodes = append(f.nodes, path)
			if major != 253 || minor != 300 {
				return errors.New("wrong numbers")
			}
			return os.WriteFile(path, nil, 0o600)
		},
	}
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mapper")
	f := &fake{dev: 0x2c | 253<<8 | 0x100<<12}
	targets := []Target{{0, 32768, "linear", "7:1 2048"}}
	d, err := f.control(dir).Create("my--vg-root", "LVM-xyz", false, targets)
	if err != nil {
		t.Fatal(err)
	}
	want := Dev{Name: "my--vg-root", Path: filepath.Join(dir, "my--vg-root"), Major: 253, Minor: 300}
	if d != want {
		t.Errorf("Create = %+v, want %+v", d, want)
	}
	if diff := cmp.Diff([]uint32{cmdDevCreate, cmdTableLoad, cmdDevSuspend}, f.cmds); diff != "" {
		t.Errorf("ioctls (-want, +got):\n%s", diff)
	}
	for i, n := range f.names {
		if n != "my--vg-root" {
			t.Errorf("ioctl %d: name %q", i, n)
		}
	}
	if uuid := strings.TrimRight(string(f.bufs[0][176:305]), "\x00"); uuid != "LVM-xyz" {
		t.Errorf("DM_DEV_CREATE uuid = %q, want LVM-xyz", uuid)
	}
	load, _ := marshal("my--vg-root", "", 0, targets)
	if diff := cmp.Diff(load, f.bufs[1]); diff != "" {
		t.Errorf("DM_TABLE_LOAD buffer (-want, +got):\n%s", diff)
	}
	if flags := binary.LittleEndian.Uint32(f.bufs[2][28:]); flags != 0 {
		t.Errorf("DM_DEV_SUSPEND flags = %#x, want 0 (resume)", flags)
	}
	if _, err := os.Stat(d.Path); err != nil || len(f.nodes) != 1 {
		t.Errorf("node %s: %v (mknod calls %v)", d.Path, err, f.nodes)
	}

	// Again, over the node that is there: it is replaced.
	f = &fake{dev: 0x2c | 253<<8 | 0x100<<12}
	if _, err := f.control(dir).Create("my--vg-root", "LVM-xyz", true, targets); err != nil {
		t.Fatal(err)
	}
	if flags := binary.LittleEndian.Uint32(f.bufs[1][28:]); flags != flagReadOnly {
		t.Errorf("read-only DM_TABLE_LOAD flags = %#x, want %#x", flags, flagReadOnly)
	}

	if err := f.control(dir).Remove("my--vg-root"); err != nil {
		t.Fatal(err)
	}
	if f.cmds[len(f.cmds)-1] != cmdDevRemove {
		t.Errorf("Remove: last ioctl %#x, want DM_DEV_REMOVE", f.cmds[len(f.cmds)-1])
	}
	if _, err := os.Stat(d.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, %s: %v; want it gone", d.Path, err)
	}
}

// TestCreateFails: a failure after DM_DEV_CREATE removes the device again.
func TestCreateFails(t *testing.T) {
	for _, tt := range []struct {
		fail uint32
		dev  uint64
		cmds []uint32
		want string
	}{
		{cmdDevCreate, 0, []uint32{cmdDevCreate}, `^dm: DM_DEV_CREATE\(vg-lv, uuid LVM-u\) = invalid argument$`},
		{cmdTableLoad, 0, []uint32{cmdDevCreate, cmdTableLoad, cmdDevRemove}, `^dm: DM_TABLE_LOAD\(vg-lv, \["0 8 linear 7:1 0"\]\) = invalid argument$`},
		{cmdDevSuspend, 0, []uint32{cmdDevCreate, cmdTableLoad, cmdDevSuspend, cmdDevRemove}, `DM_DEV_SUSPEND\(vg-lv, resume\) = invalid argument`},
		// mknod fails: wrong numbers.
		{0, 253 << 8, []uint32{cmdDevCreate, cmdTableLoad, cmdDevSuspend, cmdDevRemove}, `^mknod .*/vg-lv: block 253:0: wrong numbers$`},
		// and so does the removal after a failed load.
		{cmdDevRemove, 253 << 8, []uint32{cmdDevCreate, cmdTableLoad, cmdDevSuspend, cmdDevRemove}, `(?s)block 253:0: wrong numbers\ndm: DM_DEV_REMOVE\(vg-lv\) = invalid argument`},
	} {
		f := &fake{fail: tt.fail, dev: tt.dev}
		_, err := f.control(t.TempDir()).Create("vg-lv", "LVM-u", false, []Target{{0, 8, "linear", "7:1 0"}})
		if err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
			t.Errorf("Create with %#x failing = %v, want %q", tt.fail, err, tt.want)
		}
		if diff := cmp.Diff(tt.cmds, f.cmds); diff != "" {
			t.Errorf("Create with %#x failing: ioctls (-want, +got):\n%s", tt.fail, diff)
		}
	}
	if _, err := (Control{Ioctl: func(uint32, []byte) error { return nil }}).Create("x", "", false, nil); err == nil {
		t.Errorf("Create(no targets) = nil, want an error")
	}
}

func TestTableTypes(t *testing.T) {
	// An answer as the kernel writes it: each spec followed by its
	// parameters and aligned to 8, next counted from data_start.
	answer := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint32(answer[offDataStart:], sizeofIoctl)
	le.PutUint32(answer[offTargetCount:], 2)
	spec := answer[sizeofIoctl:]
	le.PutUint32(spec[20:], 64)
	copy(spec[24:], "striped")
	copy(spec[sizeofTargetSpec:], "2 128 259:2 67584 259:3 2048\x00")
	copy(spec[64+24:], "linear")
	var asked []byte
	c := Control{Ioctl: func(cmd uint32, buf []byte) error {
		if cmd != cmdTableStat {
			return fmt.Errorf("ioctl %#x, want DM_TABLE_STATUS", cmd)
		}
		asked = slices.Clone(buf[:sizeofIoctl])
		copy(buf, answer)
		return nil
	}}
	got, err := c.TableTypes("vg0-crash")
	if err != nil || !slices.Equal(got, []string{"striped", "linear"}) {
		t.Errorf("TableTypes() = %q, %v; want striped, linear", got, err)
	}
	if f := le.Uint32(asked[offFlags:]); f != flagStatusTable || cstr.String(asked[offName:offUUID]) != "vg0-crash" {
		t.Errorf("TableTypes asked with flags %#x for %q, want DM_STATUS_TABLE_FLAG for vg0-crash", f, cstr.String(asked[offName:offUUID]))
	}

	le.PutUint32(spec[20:], 1<<20)
	if got, err := c.TableTypes("vg0-crash"); err == nil {
		t.Errorf("TableTypes() with a spec past the end = %q, want an error", got)
	}
	le.PutUint32(answer[offFlags:], flagBufferFull)
	if got, err := c.TableTypes("vg0-crash"); err == nil {
		t.Errorf("TableTypes() of a full buffer = %q, want an error", got)
	}
	fail := Control{Ioctl: func(uint32, []byte) error { return errors.New("ENXIO") }}
	if _, err := fail.TableTypes("vg0-crash"); err == nil || !strings.Contains(err.Error(), "DM_TABLE_STATUS(vg0-crash)") {
		t.Errorf("TableTypes() of a failing ioctl = %v, want it named", err)
	}
}
