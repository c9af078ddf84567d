// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package installed is ukdump's end-to-end test on a real installed system:
// the production machine is a Debian 12 guest (integration/guest) with
// ukdump's .deb installed by dpkg -i, booted from its own disk in QEMU on its
// own kernel and initrd with crashkernel=96M. systemd starts ukdump.service
// (build and load), a test unit crashes the machine with `ukdump test --yes`,
// the capture kernel saves the dump to /var/crash on the guest's root file
// system and reboots, and the guest boots again, where ukdump-report.service
// and `ukdump status` report the dump on the serial console. The host then
// reads the disk without mounting it (debugfs at the root partition's offset)
// and checks the dump: manifest.json against the vmcore, `ukdump info`, and a
// crash session with the kernel's debug symbols (log, bt, ps, kmem -i).
// Debian 12's crash 8.0.2 has two limits here: its ps finds no task in the
// PID table of Debian's 6.1.0-57 (the task list is checked on init_task's
// list instead), and it opens no session on a 6.12 kernel at all, so a 6.12
// dump gets crash --minimal's log.
//
// The scenarios, each also a storage layout that ukdump.service's build
// (host-only detection, on the guest itself) must find the modules of:
//   - 6.1: the installed system on its 6.1 kernel, root and /var/crash on an
//     NVMe disk, ext4;
//   - upgrade: the guest has 6.1 and 6.12; a first boot of 6.1 builds the
//     image for 6.1 only (the system as it was before the upgrade), then the
//     guest boots 6.12: ukdump.service rebuilds for 6.12 and loads, and the
//     6.12 capture kernel saves the crash. In that boot, before
//     ukdump.service, a unit runs `ukdump load` with the 6.1 image against the
//     6.12 kernel: the refusal, its message and exit status are checked. The
//     dump goes to a second disk on virtio-scsi, btrfs (LABEL=crashdump in
//     the config), mounted by the running system;
//   - xfs-sata: the dump disk on AHCI SATA, XFS, mounted when the machine
//     crashes (the capture kernel's mount replays its log);
//   - lvm-nvme: the Ubuntu/RHEL server layout, built by the guest itself in
//     the crash boot before ukdump.service: an LVM2 VG on the GPT partition
//     of an NVMe disk, /var/crash an XFS in a linear LV of it, the default
//     config. The capture kernel assembles the LV itself; the host reads it
//     with ukdump's LVM reader and a loop mount at the LV's offset.
//
// Dump disks other than the root are read on the host through read-only
// loop mounts in a private mount namespace.
//
// The test carries the build tag e2e, needs root, make all and make deb, and
// fails, never skips, when a tool or a file is missing. make e2e-system runs
// it (about 15 minutes on 2 cores, with the guest tree cached; building the
// tree takes 2-3 minutes more); by hand:
//
//	make all deb
//	go test -tags e2e -count=1 -timeout 60m -v ./integration/installed/
//
// UKDUMP_E2E_CRASHKERNEL=N boots every scenario with crashkernel=NM instead
// of its own reservation, to measure the smallest that passes:
//
//	UKDUMP_E2E_CRASHKERNEL=88 go test -tags e2e -count=1 -timeout 60m -v -run 'TestInstalled/xfs-sata' ./integration/installed/
//
// UKDUMP_QEMU_ARGS adds QEMU arguments to every boot (split at spaces;
// @NAME@ is the boot's name: prepare or crash), e.g. to trace a device
// model:
//
//	UKDUMP_QEMU_ARGS='-trace enable=pci_nvme_err* -D /tmp/qemu-@NAME@.log' go test -tags e2e -count=1 -timeout 60m -v -run 'TestInstalled/^6.1$' ./integration/installed/
//
// Each scenario keeps its files in out/e2e-system-NAME: the serial logs (raw,
// and with the host's time since QEMU started), the dump directory copied off
// the disk (dump/), the image record and the crash session. The disk image is
// deleted when the scenario passes and kept when it fails.
package installed
