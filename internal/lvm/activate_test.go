// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/dm"
)

// machine is a capture environment's sysfs and /dev with the PV images
// of testdata as block devices, numbered 259:1 on, and a device-mapper
// kernel that records what it is asked to make.
type machine struct {
	sys, dev string
	tables   map[string][]string // device name -> its table, as dmsetup prints it
}

func newMachine(t *testing.T, images ...string) *machine {
	t.Helper()
	root := t.TempDir()
	m := &machine{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev"), tables: map[string][]string{}}
	names := append([]string{"vda"}, images...) // vda: a disk that holds no PV
	for i, name := range names {
		s := &sparse{size: 64 << 20}
		if name != "vda" {
			s = image(t, name, 0).R.(*sparse)
		}
		size := s.size
		node := "nvme0n1p" + fmt.Sprint(i)
		if name == "vda" {
			node = "vda"
		}
		dir := filepath.Join(m.sys, "class", "block", node)
		for f, v := range map[string]string{"size": fmt.Sprint(size / 512), "dev": fmt.Sprintf("259:%d", i+1)} {
			writeFile(t, filepath.Join(dir, f), v+"\n")
		}
		f, err := os.Create(filepath.Join(m.dev, node))
		if os.IsNotExist(err) {
			os.MkdirAll(m.dev, 0o755)
			f, err = os.Create(filepath.Join(m.dev, node))
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(s.head); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(s.tail, size-int64(len(s.tail))); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return m
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// activator is an Activator on m whose device-mapper kernel makes dm-N
// (253:N) in m's sysfs for each device created.
func (m *machine) activator(t *testing.T) Activator {
	n := 0
	var name string
	return Activator{
		SysRoot: m.sys, DevRoot: m.dev, Probe: blkid.Probe,
		Control: dm.Control{
			Dir: filepath.Join(m.dev, "mapper"),
			Ioctl: func(cmd uint32, buf []byte) error {
				le := binary.LittleEndian
				switch cmd {
				case 0xc138fd03: // DM_DEV_CREATE
					name = strings.TrimRight(string(buf[48:176]), "\x00")
					le.PutUint64(buf[40:], uint64(253<<8|n))
				case 0xc138fd09: // DM_TABLE_LOAD: the targets' types and params
					start, count := le.Uint32(buf[16:]), le.Uint32(buf[20:])
					off := start
					for range count {
						spec := buf[off:]
						m.tables[name] = append(m.tables[name], fmt.Sprintf("%d %d %s %s", le.Uint64(spec[0:]), le.Uint64(spec[8:]),
							strings.TrimRight(string(spec[24:40]), "\x00"), strings.TrimRight(string(spec[40:40+strings.IndexByte(string(spec[40:]), 0)]), "\x00")))
						off += le.Uint32(spec[20:])
					}
				case 0xc138fd06: // resume: the device is live
					writeFile(t, filepath.Join(m.sys, "class", "block", fmt.Sprintf("dm-%d", n), "dm", "name"), name+"\n")
					n++
				}
				return nil
			},
			Mknod: func(path string, major, minor uint32) error {
				if major != 253 {
					return fmt.Errorf("major %d", major)
				}
				return os.WriteFile(path, nil, 0o600)
			},
		},
	}
}

func TestActivate(t *testing.T) {
	m := newMachine(t, "linear", "stripeA", "stripeB")
	a := m.activator(t)
	var logs []string
	a.Logf = func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }

	// By the file system's label: my-vg/root, on the first image.
	dev, p, err := a.Activate("LABEL=dumps")
	if err != nil {
		t.Fatalf("Activate(LABEL=dumps) = %v", err)
	}
	if want := filepath.Join(m.dev, "mapper", "my--vg-root"); dev != want || p.LV.Name != "root" {
		t.Errorf("Activate(LABEL=dumps) = %s (LV %s), want %s (LV root)", dev, p.LV.Name, want)
	}
	// Four extents of 4 MiB from the PV's first extent (pe_start 2048).
	if got := m.tables["my--vg-root"]; len(got) != 1 || !regexp.MustCompile(`^0 32768 linear 259:2 2048$`).MatchString(got[0]) {
		t.Errorf("my--vg-root's table = %q, want one linear target on 259:2 (nvme0n1p1) at sector 2048", got)
	}
	// Again, by its device-mapper name: it is live, nothing is made.
	before := len(m.tables)
	if dev2, _, err := a.Activate("/dev/mapper/my--vg-root"); err != nil || dev2 != dev || len(m.tables) != before {
		t.Errorf("Activate(/dev/mapper/my--vg-root) again = %s, %v (%d tables, was %d); want %s, made once", dev2, err, len(m.tables), before, dev)
	}
	// Striped over two PVs, by /dev/VG/LV.
	if _, _, err := a.Activate("/dev/vg1/stripes"); err != nil {
		t.Fatalf("Activate(/dev/vg1/stripes) = %v", err)
	}
	if got := m.tables["vg1-stripes"]; len(got) != 1 || !strings.Contains(got[0], " striped 2 128 259:3 ") || !strings.Contains(got[0], " 259:4 ") {
		t.Errorf("vg1-stripes' table = %q, want striped over 259:3 and 259:4", got)
	}
	if len(logs) != 0 {
		t.Errorf("Activate logged %q, want nothing", logs)
	}
}

func TestActivateErrors(t *testing.T) {
	m := newMachine(t, "stripeA", "thinA", "thinB")
	a := m.activator(t)
	for _, tt := range []struct {
		spec    string
		err     error
		waiting bool
		message string
	}{
		{"/dev/vg1/stripes", ErrMissingPV, true, `^VG vg1: PV pv1 .* missing: LV stripes cannot be assembled`},
		{"LABEL=crashdump", ErrNotFound, true, `no LVM logical volume has LABEL=crashdump`},
		{"/dev/mapper/nope-root", ErrNotFound, true, `no LVM logical volume is /dev/mapper/nope-root`},
		{"/dev/vgthin/thin", ErrUnsupported, false, `^VG vgthin: LV thin is of type thin \(thin provisioning\)`},
	} {
		_, _, err := a.Activate(tt.spec)
		if !errors.Is(err, tt.err) || Waiting(err) != tt.waiting || !regexp.MustCompile(tt.message).MatchString(fmt.Sprint(err)) {
			t.Errorf("Activate(%s) = %v (waiting %v), want %v (waiting %v) matching %q", tt.spec, err, Waiting(err), tt.err, tt.waiting, tt.message)
		}
	}
	if len(m.tables) != 0 {
		t.Errorf("failed activations made %v", m.tables)
	}

	// The kernel refuses: the LV is named, and dm_mod suggested.
	m = newMachine(t, "linear")
	a = m.activator(t)
	a.Control.Ioctl = func(uint32, []byte) error { return errors.New("ENXIO") }
	if _, _, err := a.Activate("/dev/my-vg/root"); err == nil || Waiting(err) || !strings.Contains(err.Error(), "VG my-vg: LV root: dm: DM_DEV_CREATE") || !strings.Contains(err.Error(), "dm_mod") {
		t.Errorf("Activate with a failing device-mapper = %v, want the LV named and dm_mod suggested", err)
	}
	a.SysRoot = filepath.Join(t.TempDir(), "nosys")
	if _, _, err := a.Activate("/dev/my-vg/root"); err == nil || !strings.Contains(err.Error(), "is sysfs mounted") {
		t.Errorf("Activate without sysfs = %v", err)
	}
}
