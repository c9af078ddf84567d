// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package initramfs

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ukdump/ukdump/integration/guest"
)

var record = flag.Bool("record", false, "boot a QEMU guest and re-record "+recordedSysfs)

// lvmDebs are the packages the guest tree lacks for LVM (dmsetup is there).
var lvmDebs = []string{"lvm2", "libaio1", "libedit2", "libbsd0", "lsb-base", "dmeventd", "libdevmapper-event1.02.1", "liblvm2cmd2.03"}

// TestRecordSysfs boots the cached Debian guest (6.1 kernel, root on
// virtio-blk) once with an NVMe disk (partition 1 for a file system,
// partitions 2 and 3 an LVM volume group that testdata/sysfs/record.sh
// makes in the guest, with a linear and a striped volume), an AHCI SATA disk
// (ich9-ahci + ide-hd, one partition), a virtio-scsi disk (scsi-hd, one
// partition) and a MegaRAID SAS disk (megasas + scsi-hd, no partition
// table), and writes what record.sh recorded to recordedSysfs:
//
//	go test -tags e2e -run TestRecordSysfs -v ./initramfs/ -args -record
func TestRecordSysfs(t *testing.T) {
	if !*record {
		t.Skip("re-record " + recordedSysfs + " with: go test -tags e2e -run TestRecordSysfs -v ./initramfs/ -args -record")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := t.TempDir()
	root, err := guest.Root(ctx, guest.RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rels, err := guest.Releases(root)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := guest.LatestRelease(rels, "6.1.")
	if err != nil {
		t.Fatal(err)
	}
	vmlinuz, initrd, err := guest.Kernel(root, rel)
	if err != nil {
		t.Fatal(err)
	}
	debDir := filepath.Join(dir, "debs")
	if err := os.Mkdir(debDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dl := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, lvmDebs...)...)
	dl.Dir = debDir
	if out, err := dl.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %s: %v\n%s", strings.Join(lvmDebs, " "), err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(debDir, "*.deb")) // only a malformed pattern fails
	script, err := os.ReadFile("testdata/sysfs/record.sh")
	if err != nil {
		t.Fatal(err)
	}
	const unit = "[Unit]\nDescription=record sysfs for ukdump's storage detection tests\nAfter=multi-user.target\n\n" +
		"[Service]\nType=oneshot\nExecStart=/bin/sh /usr/local/sbin/record-sysfs.sh\nExecStartPost=/bin/systemctl --no-block poweroff\n\n" +
		"[Install]\nWantedBy=multi-user.target\n"
	disk, uuid, err := guest.Disk(ctx, root, guest.DiskOptions{
		Path: filepath.Join(dir, "root.img"),
		Debs: debs,
		Files: []guest.File{
			{Path: "/usr/local/sbin/record-sysfs.sh", Data: script, Mode: 0o755},
			{Path: "/etc/systemd/system/record-sysfs.service", Data: []byte(unit)},
		},
		Units: []string{"record-sysfs.service"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img := func(name, table string, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		if table != "" {
			sf := exec.CommandContext(ctx, "sfdisk", "--quiet", p)
			sf.Stdin = strings.NewReader(table)
			if out, err := sf.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk %s: %v\n%s", p, err, out)
			}
		}
		return p
	}
	const linux, lvm = "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	nvme := img("nvme.img", "label: gpt\nsize=64MiB, type="+linux+"\nsize=64MiB, type="+lvm+"\ntype="+lvm+"\n", 256<<20)
	sata := img("sata.img", "label: gpt\ntype="+linux+"\n", 64<<20)
	vscsi := img("vscsi.img", "label: gpt\ntype="+linux+"\n", 64<<20)
	mega := img("mega.img", "", 64<<20)
	out := img("rec.img", "", 16<<20)
	drive := func(id, file string) string { return "file=" + file + ",format=raw,if=none,id=" + id }
	var console strings.Builder
	vm, err := guest.Start(ctx, guest.BootOptions{
		Kernel: vmlinuz, Initrd: initrd, Disk: disk, RootUUID: uuid, Timeout: 20 * time.Minute,
		Console: &console,
		Args: []string{
			"-drive", drive("nvme0", nvme), "-device", "nvme,drive=nvme0,serial=ukdump-nvme",
			"-device", "ich9-ahci,id=ahci0", "-drive", drive("sata0", sata), "-device", "ide-hd,drive=sata0,bus=ahci0.0",
			"-device", "virtio-scsi-pci,id=vscsi0", "-drive", drive("vscsi0d", vscsi), "-device", "scsi-hd,drive=vscsi0d,bus=vscsi0.0",
			"-device", "megasas,id=mega0", "-drive", drive("mega0d", mega), "-device", "scsi-hd,drive=mega0d,bus=mega0.0",
			"-drive", drive("rec", out), "-device", "virtio-blk-pci,drive=rec,serial=ukdump-rec",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	line, err := vm.Expect(ctx, "record-sysfs: done")
	werr := vm.Wait()
	if err != nil {
		t.Fatalf("no done line (%v, QEMU: %v); console:\n%s", err, werr, console.String())
	}
	t.Logf("%s at %v", line.Text, line.At)
	if err := copyTarGz(recordedSysfs, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", recordedSysfs)
}

// copyTarGz writes the tar at the start of the disk image src to dst, gzipped.
func copyTarGz(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	tr, tw := tar.NewReader(in), tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
