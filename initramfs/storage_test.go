// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/hostfs"
)

// recordedSysfs is what testdata/sysfs/record.sh recorded in a QEMU guest
// (integration/cmd/recordsysfs): Debian's 6.1 kernel with
//
//	vda        virtio-blk, 0000:00:06.0 (the recording's output disk)
//	vdb1       virtio-blk, 0000:00:07.0 (the guest's root)
//	nvme0n1p1  NVMe, 0000:00:02.0; p2 and p3 are the LVM PVs of vg0
//	dm-0       vg0-crash, linear on nvme0n1p2
//	dm-1       vg0-stripe, striped on nvme0n1p2 and nvme0n1p3
//	sda        megasas (megaraid_sas), 0000:00:05.0, no partition table
//	sdb1       AHCI SATA (ich9-ahci + ide-hd), 0000:00:03.0
//	sdc1       virtio-scsi (scsi-hd), 0000:00:04.0
//	loop0-7    loop devices
//
// and info/ (the guest's lsblk, loaded modules, dmsetup table).
const recordedSysfs = "testdata/sysfs/qemu-6.1.tar.gz"

// recordedModules are the modules.* files of the same kernel, cut down to
// the modules the recorded devices and the tests use (and what they depend
// on) and the aliases that match the recorded modaliases.
const recordedModules = "testdata/sysfs/modules-6.1"

// recordedHost unpacks recordedSysfs into a new directory and returns it.
func recordedHost(t *testing.T) string {
	t.Helper()
	f, err := os.Open(recordedSysfs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) && filepath.Clean(h.Name) != "." {
			t.Fatalf("%s: %q is outside the tree", recordedSysfs, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// recordedTable serves the device-mapper tables the guest's dmsetup table
// printed ("vg0-crash: 0 65536 linear 259:2 2048").
func recordedTable(t *testing.T, host string) func(string) ([]string, error) {
	t.Helper()
	f, err := os.Open(filepath.Join(host, "info", "dmsetup-table.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tables := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) >= 4 {
			name := strings.TrimSuffix(f[0], ":")
			tables[name] = append(tables[name], f[3])
		}
	}
	return func(name string) ([]string, error) {
		if ts, ok := tables[name]; ok {
			return ts, nil
		}
		return nil, os.ErrNotExist
	}
}

func TestDetectStorage(t *testing.T) {
	host := recordedHost(t)
	sys := filepath.Join(host, "sys")
	table := recordedTable(t, host)
	const nvme = "driver of 0000:00:02.0 (pci), a parent of "
	codepages := func(reason string) []StorageModule {
		var m []StorageModule
		for _, cp := range vfatCodepages {
			m = append(m, StorageModule{Name: cp, Reasons: []string{"code page of " + reason}})
		}
		return m
	}
	for _, tt := range []struct {
		name     string
		disks    []HostDisk
		table    func(string) ([]string, error) // default: the recorded tables
		want     []StorageModule
		warnings []string
	}{
		{
			name:  "nvme",
			disks: []HostDisk{{"target[0] LABEL=crashdump", "nvme0n1p1", "ext4"}},
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{nvme + "nvme0n1p1, for target[0] LABEL=crashdump"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on nvme0n1p1, for target[0] LABEL=crashdump"}},
			},
		},
		{
			name:  "ahci sata",
			disks: []HostDisk{{"target[0] LABEL=sata", "sdb1", "xfs"}},
			want: []StorageModule{
				{Name: "ahci", Reasons: []string{"driver of 0000:00:03.0 (pci), a parent of sdb1, for target[0] LABEL=sata"}},
				{Name: "sd_mod", Reasons: []string{"driver of 3:0:0:0 (scsi), a parent of sdb1, for target[0] LABEL=sata"}},
				{Name: "xfs", Reasons: []string{"file system xfs on sdb1, for target[0] LABEL=sata"}},
			},
		},
		{
			name:  "virtio-scsi",
			disks: []HostDisk{{"target[1] UUID=0a1b", "sdc1", "btrfs"}},
			want: []StorageModule{
				{Name: "virtio_pci", Reasons: []string{"driver of 0000:00:04.0 (pci), a parent of sdc1, for target[1] UUID=0a1b"}},
				{Name: "virtio_scsi", Reasons: []string{"driver of virtio0 (virtio), a parent of sdc1, for target[1] UUID=0a1b"}},
				{Name: "sd_mod", Reasons: []string{"driver of 9:0:0:0 (scsi), a parent of sdc1, for target[1] UUID=0a1b"}},
				{Name: "btrfs", Reasons: []string{"file system btrfs on sdc1, for target[1] UUID=0a1b"}},
			},
		},
		{
			name:  "megaraid sas, vfat",
			disks: []HostDisk{{"target[0] /dev/sda", "sda", "vfat"}},
			want: append([]StorageModule{
				{Name: "megaraid_sas", Reasons: []string{"driver of 0000:00:05.0 (pci), a parent of sda, for target[0] /dev/sda"}},
				{Name: "sd_mod", Reasons: []string{"driver of 2:2:0:0 (scsi), a parent of sda, for target[0] /dev/sda"}},
				{Name: "vfat", Reasons: []string{"file system vfat on sda, for target[0] /dev/sda"}},
			}, codepages("file system vfat on sda, for target[0] /dev/sda")...),
		},
		{
			name:  "virtio-blk",
			disks: []HostDisk{{"target[0] LABEL=root", "vdb1", "ext4"}},
			want: []StorageModule{
				{Name: "virtio_pci", Reasons: []string{"driver of 0000:00:07.0 (pci), a parent of vdb1, for target[0] LABEL=root"}},
				{Name: "virtio_blk", Reasons: []string{"driver of virtio2 (virtio), a parent of vdb1, for target[0] LABEL=root"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on vdb1, for target[0] LABEL=root"}},
			},
		},
		{
			name:  "lvm linear on nvme",
			disks: []HostDisk{{"target[0] /dev/mapper/vg0-crash", "dm-0", "xfs"}},
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{nvme + "nvme0n1p2, a slave of dm-0 (vg0-crash), for target[0] /dev/mapper/vg0-crash"}},
				{Name: "dm_mod", Reasons: []string{"device-mapper device dm-0 (vg0-crash, LVM), for target[0] /dev/mapper/vg0-crash"}},
				{Name: "xfs", Reasons: []string{"file system xfs on dm-0, for target[0] /dev/mapper/vg0-crash"}},
			},
		},
		{
			name:  "lvm striped on two nvme partitions",
			disks: []HostDisk{{"target[0] LABEL=stripe", "dm-1", "ext4"}},
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{
					nvme + "nvme0n1p2, a slave of dm-1 (vg0-stripe), for target[0] LABEL=stripe",
					nvme + "nvme0n1p3, a slave of dm-1 (vg0-stripe), for target[0] LABEL=stripe",
				}},
				{Name: "dm_mod", Reasons: []string{"device-mapper device dm-1 (vg0-stripe, LVM), for target[0] LABEL=stripe"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on dm-1, for target[0] LABEL=stripe"}},
			},
		},
		{
			name: "two targets",
			disks: []HostDisk{
				{"target[0] LABEL=crashdump", "nvme0n1p1", "ext4"},
				{"target[1] LABEL=sata", "sdb1", "ext4"},
			},
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{nvme + "nvme0n1p1, for target[0] LABEL=crashdump"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on nvme0n1p1, for target[0] LABEL=crashdump", "file system ext4 on sdb1, for target[1] LABEL=sata"}},
				{Name: "ahci", Reasons: []string{"driver of 0000:00:03.0 (pci), a parent of sdb1, for target[1] LABEL=sata"}},
				{Name: "sd_mod", Reasons: []string{"driver of 3:0:0:0 (scsi), a parent of sdb1, for target[1] LABEL=sata"}},
			},
		},
		{
			name:  "dm-crypt table",
			disks: []HostDisk{{"target[0] LABEL=secret", "dm-0", "ext4"}},
			table: func(string) ([]string, error) { return []string{"crypt"}, nil },
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{nvme + "nvme0n1p2, a slave of dm-0 (vg0-crash), for target[0] LABEL=secret"}},
				{Name: "dm_mod", Reasons: []string{"device-mapper device dm-0 (vg0-crash, LVM), for target[0] LABEL=secret"}},
				{Name: "dm_crypt", Reasons: []string{"target type crypt of dm-0 (vg0-crash, LVM), for target[0] LABEL=secret"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on dm-0, for target[0] LABEL=secret"}},
			},
			warnings: []string{"dm-0 (vg0-crash, LVM) uses the device-mapper target crypt: the capture environment sets up only LVM's linear and striped volumes"},
		},
		{
			name:  "unreadable table",
			disks: []HostDisk{{"target[0] LABEL=lv", "dm-0", "ext4"}},
			table: func(string) ([]string, error) { return nil, errors.New("permission denied") },
			want: []StorageModule{
				{Name: "nvme", Reasons: []string{nvme + "nvme0n1p2, a slave of dm-0 (vg0-crash), for target[0] LABEL=lv"}},
				{Name: "dm_mod", Reasons: []string{"device-mapper device dm-0 (vg0-crash, LVM), for target[0] LABEL=lv"}},
				{Name: "ext4", Reasons: []string{"file system ext4 on dm-0, for target[0] LABEL=lv"}},
			},
			warnings: []string{"dm-0 (vg0-crash, LVM): cannot read its device-mapper table (permission denied): assuming linear and striped segments, which dm_mod has"},
		},
		{
			name:     "no driver, no file system",
			disks:    []HostDisk{{"target[0] /dev/loop0", "loop0", ""}},
			warnings: []string{"target[0] /dev/loop0: no driver of loop0 found in " + sys + ": the image gets none for it", "target[0] /dev/loop0: no file system found on loop0: the image gets no file system module for it (set the target's fstype, or --module)"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := HostOpts{SysRoot: sys, DMTable: table}
			if tt.table != nil {
				o.DMTable = tt.table
			}
			got, warnings, err := DetectStorage(tt.disks, recordedModules, o)
			if err != nil {
				t.Fatalf("DetectStorage(%v) = %v", tt.disks, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DetectStorage(%v) (-want, +got):\n%s", tt.disks, diff)
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("DetectStorage(%v) warnings (-want, +got):\n%s", tt.disks, diff)
			}
		})
	}
}

// A driver built into the build machine's kernel has no driver/module
// link: the capture kernel's module of the driver's name is taken, else
// what the device's modalias matches (the scsi disk driver is "sd", its
// module sd_mod).
func TestDetectStorageBuiltinHere(t *testing.T) {
	host := recordedHost(t)
	sys := filepath.Join(host, "sys")
	links, _ := filepath.Glob(filepath.Join(sys, "bus", "*", "drivers", "*", "module")) // only a malformed pattern fails
	if len(links) == 0 {
		t.Fatalf("no driver module links in %s", recordedSysfs)
	}
	for _, l := range links {
		if err := os.Remove(l); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := DetectStorage([]HostDisk{{"target[0] LABEL=x", "sdc1", "ext4"}}, recordedModules, HostOpts{SysRoot: sys})
	if err != nil {
		t.Fatal(err)
	}
	want := []StorageModule{
		{Name: "virtio_pci", Reasons: []string{"driver of 0000:00:04.0 (pci), a parent of sdc1, for target[0] LABEL=x"}},
		{Name: "virtio_scsi", Reasons: []string{"driver of virtio0 (virtio), a parent of sdc1, for target[0] LABEL=x"}},
		{Name: "sd_mod", Reasons: []string{"modalias scsi:t-0x00 of 9:0:0:0 (scsi), a parent of sdc1, for target[0] LABEL=x"}},
		{Name: "ext4", Reasons: []string{"file system ext4 on sdc1, for target[0] LABEL=x"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DetectStorage(sdc1) without module links (-want, +got):\n%s", diff)
	}
}

// A driver built into the capture kernel needs nothing in the image.
func TestDetectStorageBuiltinThere(t *testing.T) {
	sys := filepath.Join(recordedHost(t), "sys")
	mods := t.TempDir()
	for _, name := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin"} {
		b, err := os.ReadFile(filepath.Join(recordedModules, name))
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "modules.dep":
			var keep []string
			for line := range strings.Lines(string(b)) {
				if !strings.HasPrefix(line, "kernel/drivers/nvme/host/nvme.ko:") {
					keep = append(keep, line)
				}
			}
			b = []byte(strings.Join(keep, ""))
		case "modules.builtin":
			b = append(b, "kernel/drivers/nvme/host/nvme.ko\n"...)
		}
		if err := os.WriteFile(filepath.Join(mods, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := DetectStorage([]HostDisk{{"target[0] LABEL=x", "nvme0n1p1", "ext4"}}, mods, HostOpts{SysRoot: sys})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "nvme" || !got[0].Builtin || got[1].Name != "ext4" || got[1].Builtin {
		t.Errorf("DetectStorage(nvme0n1p1) with nvme built in = %+v, want nvme built in, then ext4", got)
	}
}

func TestDetectStorageErrors(t *testing.T) {
	sys := filepath.Join(recordedHost(t), "sys")
	_, _, err := DetectStorage([]HostDisk{{"target[2] LABEL=gone", "nvme9n9", "ext4"}}, recordedModules, HostOpts{SysRoot: sys})
	if err == nil || !strings.HasPrefix(err.Error(), "target[2] LABEL=gone: block device nvme9n9: ") {
		t.Errorf("DetectStorage(nvme9n9) = %v, want an error naming the target and the device", err)
	}
	if _, _, err := DetectStorage(nil, t.TempDir(), HostOpts{SysRoot: sys}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DetectStorage without modules.dep = %v, want ErrNotExist", err)
	}
}

// ext4Image is the start of an ext4 file system labelled label, as blkid
// probes it.
func ext4Image(label string) []byte {
	b := make([]byte, 4096)
	sb := b[1024:]
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x60:], 0x40) // extents
	copy(sb[0x68:], "\x0a\x1b\x2c\x3d\x4e\x5f\x60\x71\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9")
	copy(sb[0x78:], label)
	return b
}

// ForConfig's storage: detected here (a target by label, probed in a
// recorded /sys and a /dev with one ext4 file system; a target without a
// device, resolved), an error for a device not here, the generic sets.
func TestForConfigStorage(t *testing.T) {
	host := recordedHost(t)
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "nvme0n1p1"), ext4Image("crashdump"), 0o644); err != nil {
		t.Fatal(err)
	}
	bb := filepath.Join(t.TempDir(), "bb")
	if err := os.WriteFile(bb, []byte("busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	resolve := func(p string) (hostfs.FS, error) {
		return hostfs.FS{Path: p, FSPath: "/", Spec: "UUID=0a1b", Device: "/dev/sdc1", FSType: "btrfs", MountPoint: "/var/crash"}, nil
	}
	sftp := config.Target{URL: "sftp://kdump@dumphost/var/crash", Identity: writeKey(t), InsecureIgnoreHostKey: true}
	for _, tt := range []struct {
		name     string
		targets  []config.Target
		storage  Storage
		optional []string // Opts.OptionalModules
		reasons  []string // "module: reason" of ConfigImage.Storage
		err      string
	}{
		{
			name:     "label here",
			targets:  []config.Target{{Device: "LABEL=crashdump", Path: "/"}, sftp},
			optional: []string{"nvme", "ext4", "virtio_pci", "virtio_net"},
			reasons: []string{
				"nvme: driver of 0000:00:02.0 (pci), a parent of nvme0n1p1, for target[0] LABEL=crashdump",
				"ext4: file system ext4 on nvme0n1p1, for target[0] LABEL=crashdump",
			},
		},
		{
			name:     "no device: the file system of the path here",
			targets:  []config.Target{{Path: "/var/crash"}},
			optional: []string{"virtio_pci", "virtio_scsi", "sd_mod", "btrfs"},
			reasons: []string{
				"virtio_pci: driver of 0000:00:04.0 (pci), a parent of sdc1, for target[0] UUID=0a1b",
				"virtio_scsi: driver of virtio0 (virtio), a parent of sdc1, for target[0] UUID=0a1b",
				"sd_mod: driver of 9:0:0:0 (scsi), a parent of sdc1, for target[0] UUID=0a1b",
				"btrfs: file system btrfs on sdc1, for target[0] UUID=0a1b",
			},
		},
		{
			name:    "not here",
			targets: []config.Target{sftp, {Device: "LABEL=elsewhere", Path: "/"}},
			err:     `target[1]: LABEL=elsewhere: no such device on this machine (blkid lists: nvme0n1p1 ext4 LABEL="crashdump" UUID="0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"); build with --generic to include drivers for other machines`,
		},
		{
			name:     "generic",
			targets:  []config.Target{{Device: "LABEL=elsewhere", Path: "/"}},
			storage:  Generic,
			optional: GenericStorageModules,
		},
		{
			name:     "generic virtio",
			targets:  []config.Target{{Device: "LABEL=elsewhere", Path: "/"}, sftp},
			storage:  GenericVirtio,
			optional: []string{"virtio_pci", "virtio_blk", "ext4", "virtio_net"},
			reasons:  []string{"virtio_pci: --generic=virtio", "virtio_blk: --generic=virtio", "ext4: --generic=virtio"},
		},
		{
			name:     "network only",
			targets:  []config.Target{sftp},
			storage:  Generic,
			optional: []string{"virtio_pci", "virtio_net"},
		},
		{
			name:    "unknown set",
			targets: []config.Target{{Device: "LABEL=crashdump", Path: "/"}},
			storage: "floppies",
			err:     `unknown storage set "floppies" (want "all" or "virtio")`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Targets = tt.targets
			ci, err := ForConfig(&cfg, []byte("toml"), ConfigOpts{
				Busybox: bb, KernelVersion: "6.1.0-57-amd64", ModulesDir: recordedModules, Resolve: resolve,
				Storage: tt.storage, Host: HostOpts{SysRoot: filepath.Join(host, "sys"), DevRoot: dev}, MachineID: filepath.Join(dev, "none"),
			})
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ForConfig(%s) = %v, want the error %q", tt.name, err, tt.err)
				}
				if strings.Contains(tt.err, "no such device") && !errors.Is(err, ErrNoHostDevice) {
					t.Errorf("ForConfig(%s) = %v, want ErrNoHostDevice", tt.name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ForConfig(%s) = %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.optional, ci.Opts.OptionalModules); diff != "" {
				t.Errorf("ForConfig(%s).Opts.OptionalModules (-want, +got):\n%s", tt.name, diff)
			}
			if tt.storage == Generic {
				return
			}
			var reasons []string
			for _, m := range ci.Storage {
				for _, r := range m.Reasons {
					reasons = append(reasons, m.Name+": "+r)
				}
			}
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" {
				t.Errorf("ForConfig(%s).Storage (-want, +got):\n%s", tt.name, diff)
			}
		})
	}
}
