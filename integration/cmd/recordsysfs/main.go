// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command recordsysfs re-records the sysfs trees that initramfs's host-only
// detection tests read (initramfs/testdata/sysfs/qemu-6.1.tar.gz). It boots
// the cached Debian guest of integration/guest (6.1 kernel, root on
// virtio-blk) once with an NVMe disk (partition 1 for a file system,
// partitions 2 and 3 an LVM volume group that record.sh makes in the guest,
// with a linear and a striped volume), an AHCI SATA disk (ich9-ahci +
// ide-hd, one partition), a virtio-scsi disk (scsi-hd, one partition) and a
// MegaRAID SAS disk (megasas + scsi-hd, no partition table), and writes what
// record.sh recorded. Run it as root from the repository's top:
//
//	go run ./integration/cmd/recordsysfs
package main

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ukdump/ukdump/integration/guest"
)

// lvmDebs are the packages the guest tree lacks for LVM (dmsetup is there).
var lvmDebs = []string{"lvm2", "libaio1", "libedit2", "libbsd0", "lsb-base", "dmeventd", "libdevmapper-event1.02.1", "liblvm2cmd2.03"}

func main() {
	out := flag.String("out", "initramfs/testdata/sysfs/qemu-6.1.tar.gz", "the recorded trees to write")
	script := flag.String("script", "initramfs/testdata/sysfs/record.sh", "the script the guest runs")
	flag.Parse()
	if err := record(*out, *script); err != nil {
		log.Fatalf("recordsysfs: %v", err)
	}
}

func record(outPath, scriptPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "recordsysfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := guest.Root(ctx, guest.RootOptions{})
	if err != nil {
		return err
	}
	rels, err := guest.Releases(root)
	if err != nil {
		return err
	}
	rel, err := guest.LatestRelease(rels, "6.1.")
	if err != nil {
		return err
	}
	vmlinuz, initrd, err := guest.Kernel(root, rel)
	if err != nil {
		return err
	}
	debDir := filepath.Join(dir, "debs")
	if err := os.Mkdir(debDir, 0o755); err != nil {
		return err
	}
	dl := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, lvmDebs...)...)
	dl.Dir = debDir
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %v\n%s", strings.Join(lvmDebs, " "), err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(debDir, "*.deb")) // only a malformed pattern fails
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
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
		return err
	}
	img := func(name, table string, size int64) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return "", err
		}
		if err := os.Truncate(p, size); err != nil {
			return "", err
		}
		if table != "" {
			sf := exec.CommandContext(ctx, "sfdisk", "--quiet", p)
			sf.Stdin = strings.NewReader(table)
			if out, err := sf.CombinedOutput(); err != nil {
				return "", fmt.Errorf("sfdisk %s: %v\n%s", p, err, out)
			}
		}
		return p, nil
	}
	const linux, lvm = "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	var nvme, sata, vscsi, mega, out string
	for _, d := range []struct {
		p           *string
		name, table string
		size        int64
	}{
		{&nvme, "nvme.img", "label: gpt\nsize=64MiB, type=" + linux + "\nsize=64MiB, type=" + lvm + "\ntype=" + lvm + "\n", 256 << 20},
		{&sata, "sata.img", "label: gpt\ntype=" + linux + "\n", 64 << 20},
		{&vscsi, "vscsi.img", "label: gpt\ntype=" + linux + "\n", 64 << 20},
		{&mega, "mega.img", "", 64 << 20},
		{&out, "rec.img", "", 16 << 20},
	} {
		if *d.p, err = img(d.name, d.table, d.size); err != nil {
			return err
		}
	}
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
		return err
	}
	line, err := vm.Expect(ctx, "record-sysfs: done")
	werr := vm.Wait()
	if err != nil {
		return fmt.Errorf("no done line (%v, QEMU: %v); console:\n%s", err, werr, console.String())
	}
	log.Printf("%s at %v", line.Text, line.At)
	if err := copyTarGz(outPath, out); err != nil {
		return err
	}
	log.Printf("wrote %s", outPath)
	return nil
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
