// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package blkid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeDev is one block device of a fake system.
type fakeDev struct {
	name   string
	parent string // disk of a partition
	partn  int
	img    []byte
	size   string // content of the sysfs size file; none if ""
	noNode bool   // no file in DevRoot
}

// addDev creates d the way sysfs shows it: a directory under
// SysRoot/devices/virtual/block (partitions inside their disk's) and a
// symlink SysRoot/class/block/<name> to it, made last so that the device
// appears at once; plus a regular file standing in for DevRoot/<name>.
func addDev(f Finder, d fakeDev) error {
	rel := filepath.Join("devices", "virtual", "block", d.parent, d.name)
	dir := filepath.Join(f.SysRoot, rel)
	files := map[string]string{"uevent": fmt.Sprintf("MAJOR=253\nMINOR=0\nDEVNAME=%s\nDEVTYPE=disk\n", d.name)}
	if d.parent != "" {
		files["uevent"] = fmt.Sprintf("MAJOR=253\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=partition\nPARTN=%d\n", d.partn, d.name, d.partn)
		files["partition"] = fmt.Sprintf("%d\n", d.partn)
	}
	if d.size != "" {
		files["size"] = d.size + "\n"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			return err
		}
	}
	if !d.noNode {
		if err := os.WriteFile(filepath.Join(f.DevRoot, d.name), d.img, 0o644); err != nil {
			return err
		}
	}
	return os.Symlink(filepath.Join("..", "..", rel), filepath.Join(f.SysRoot, "class", "block", d.name))
}

func newFinder(t *testing.T, devs ...fakeDev) Finder {
	t.Helper()
	root := t.TempDir()
	f := Finder{SysRoot: filepath.Join(root, "sys"), DevRoot: filepath.Join(root, "dev")}
	for _, d := range []string{filepath.Join(f.SysRoot, "class", "block"), f.DevRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devs {
		if err := addDev(f, d); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

const (
	uuidXFS   = "11111111-2222-4333-8444-555555555555"
	uuidExt4  = "9b3c2a10-7d4e-4f5a-8b6c-0d1e2f3a4b5c"
	uuidBtrfs = "c0ffee00-1234-4567-89ab-cdef01234567"
	guidVdb1  = "6a8f3c1e-5b2d-4e7f-9a0b-1c2d3e4f5a6b"
)

// testSystem: vda xfs; vdb GPT with vdb1 ext4 (made by mkfs.ext4); vdc MBR
// with vdc1 FAT32 and vdc2 btrfs; loop0 empty; sr0 without a /dev node;
// /dev/disk/by-label/root -> ../../vda.
func testSystem(t *testing.T) Finder {
	f := newFinder(t,
		fakeDev{name: "vda", img: xfsImage(t, uuidXFS, "root"), size: "41943040"},
		fakeDev{name: "vdb", img: gptDisk(t, 512, guidVdb1)},
		fakeDev{name: "vdb1", parent: "vdb", partn: 1, img: mkfsExt4(t, uuidExt4, "crashdump")},
		fakeDev{name: "vdc", img: mbrDisk(0x0002dd75)},
		fakeDev{name: "vdc1", parent: "vdc", partn: 1, img: fatImage(true, 0x1234ABCD, "DUMPS")},
		fakeDev{name: "vdc2", parent: "vdc", partn: 2, img: btrfsImage(t, uuidBtrfs, "pool")},
		fakeDev{name: "loop0", size: "0"},
		fakeDev{name: "sr0", noNode: true},
	)
	if err := os.MkdirAll(filepath.Join(f.DevRoot, "disk", "by-label"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../vda", filepath.Join(f.DevRoot, "disk", "by-label", "root")); err != nil {
		t.Fatal(err)
	}
	return f
}

func testDevices(f Finder) []Device {
	p := func(n string) string { return filepath.Join(f.DevRoot, n) }
	return []Device{
		{Name: "vda", Path: p("vda"), FSType: "xfs", UUID: uuidXFS, Label: "root"},
		{Name: "vdb", Path: p("vdb")},
		{Name: "vdb1", Path: p("vdb1"), FSType: "ext4", UUID: uuidExt4, Label: "crashdump", PartUUID: guidVdb1},
		{Name: "vdc", Path: p("vdc")},
		{Name: "vdc1", Path: p("vdc1"), FSType: "vfat", UUID: "1234-abcd", Label: "DUMPS", PartUUID: "0002dd75-01"},
		{Name: "vdc2", Path: p("vdc2"), FSType: "btrfs", UUID: uuidBtrfs, Label: "pool", PartUUID: "0002dd75-02"},
	}
}

func TestList(t *testing.T) {
	f := testSystem(t)
	got, err := f.List()
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if diff := cmp.Diff(testDevices(f), got); diff != "" {
		t.Errorf("List() mismatch (-want, +got):\n%s", diff)
	}
}

func TestFind(t *testing.T) {
	f := testSystem(t)
	devs := testDevices(f)
	for _, tt := range []struct {
		spec string
		want Device
	}{
		{"LABEL=crashdump", devs[2]},
		{`LABEL="crashdump"`, devs[2]},
		{"UUID=" + strings.ToUpper(uuidExt4), devs[2]},
		{"UUID=1234-ABCD", devs[4]},
		{"UUID=" + uuidBtrfs, devs[5]},
		{"PARTUUID=" + strings.ToUpper(guidVdb1), devs[2]},
		{"PARTUUID=0002dd75-02", devs[5]},
		{"/dev/vdc1", devs[4]},
		{"/dev/disk/by-label/root", devs[0]},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := f.Find(tt.spec)
			if err != nil {
				t.Fatalf("Find(%q) = %v", tt.spec, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) mismatch (-want, +got):\n%s", tt.spec, diff)
			}
		})
	}
}

func TestFindErrors(t *testing.T) {
	f := testSystem(t)
	seen := `(seen: vda xfs LABEL="root" UUID="` + uuidXFS + `", vdb no filesystem, vdb1 ext4 LABEL="crashdump" UUID="` + uuidExt4 +
		`" PARTUUID="` + guidVdb1 + `", vdc no filesystem, vdc1 vfat LABEL="DUMPS" UUID="1234-abcd" PARTUUID="0002dd75-01", ` +
		`vdc2 btrfs LABEL="pool" UUID="` + uuidBtrfs + `" PARTUUID="0002dd75-02", loop0 (empty), sr0 (cannot open: no such file or directory))`
	twins := newFinder(t,
		fakeDev{name: "sda", img: xfsImage(t, uuidXFS, "a")},
		fakeDev{name: "sdb", img: xfsImage(t, uuidXFS, "b")})
	for _, tt := range []struct {
		name     string
		f        Finder
		spec     string
		notFound bool
		want     string
	}{
		{"label is exact", f, "LABEL=CRASHDUMP", true, `blkid: no block device with LABEL="CRASHDUMP" ` + seen},
		{"uuid", f, "UUID=deadbeef-0000-0000-0000-000000000000", true, `blkid: no block device with UUID="deadbeef-0000-0000-0000-000000000000" ` + seen},
		{"path", f, "/dev/vdz", true, "blkid: no block device with path /dev/vdz " + seen},
		{"no devices", newFinder(t), "LABEL=x", true, `blkid: no block device with LABEL="x" (seen: none)`},
		{"ambiguous", twins, "UUID=" + uuidXFS, false, `blkid: UUID="` + uuidXFS + `" matches 2 block devices (sda, sdb); refusing to guess, use PARTUUID= or a /dev/… path`},
		{"bad spec", f, "ID=1", false, `blkid: device spec "ID=1": unknown kind "ID" (want UUID, LABEL, PARTUUID or a /dev/… path)`},
		{"no sysfs", Finder{SysRoot: filepath.Join(t.TempDir(), "nosys")}, "LABEL=x", false, "is sysfs mounted on"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.Find(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("Find(%q) = %v;\nwant %q (errors.Is(err, ErrNotFound) = %v)", tt.spec, err, tt.want, tt.notFound)
			}
		})
	}
}

func TestWaitAppears(t *testing.T) {
	f := newFinder(t, fakeDev{name: "vda", img: xfsImage(t, uuidXFS, "root")})
	want := Device{Name: "vdb", Path: filepath.Join(f.DevRoot, "vdb"), FSType: "btrfs", UUID: uuidBtrfs, Label: "crashdump"}
	img := btrfsImage(t, uuidBtrfs, "crashdump")
	done := make(chan error, 1)
	time.AfterFunc(50*time.Millisecond, func() { done <- addDev(f, fakeDev{name: "vdb", img: img}) })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	got, err := f.Wait(ctx, "LABEL=crashdump", 10*time.Millisecond)
	if err := <-done; err != nil {
		t.Fatalf("adding vdb: %v", err)
	}
	if err != nil {
		t.Fatalf("Wait(LABEL=crashdump) = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Wait(LABEL=crashdump) mismatch (-want, +got):\n%s", diff)
	}
}

func TestWaitTimeout(t *testing.T) {
	f := newFinder(t, fakeDev{name: "vda", img: xfsImage(t, uuidXFS, "root")})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Wait(ctx, "LABEL=crashdump", 10*time.Millisecond)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want ErrNotFound and DeadlineExceeded", err)
	}
	for _, want := range []string{
		`blkid: no block device with LABEL="crashdump" after waiting `,
		`(seen: vda xfs LABEL="root" UUID="` + uuidXFS + `"): context deadline exceeded; `,
		"is the driver module for the disk in the image? (add it with --module)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Wait = %q, want it to contain %q", err, want)
		}
	}

	// Errors other than ErrNotFound end the wait at once.
	if _, err := f.Wait(context.Background(), "LABEL=", time.Hour); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Wait(LABEL=) = %v, want a spec error", err)
	}
}
