#!/bin/sh
# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.

# record.sh runs once in the QEMU guest that integration/cmd/recordsysfs boots
# (storage_record_test.go). It makes an LVM volume group on the NVMe disk,
# then copies what host-only storage detection reads for every block device
# into a tree and writes it as a tar to the disk whose serial is ukdump-rec:
# the /sys/class/block links, and for each directory from a block device up
# to /sys/devices (and of its device link) its modalias, uevent, dev,
# partition and size files, its driver, subsystem and device links, the
# driver's module link, its slaves, holders and multipath links and its dm/
# and md/ files. Beside sys/, info/ holds what the guest saw: its kernel
# release, its loaded modules, lsblk and dmsetup table.
set -u
say() { echo "record-sysfs: $*" >/dev/console; }
out=/run/record-sysfs
rm -rf "$out"
mkdir -p "$out/info"

rec=
for d in /sys/class/block/vd*; do
	[ "$(cat "$d/serial" 2>/dev/null)" = ukdump-rec ] && rec=/dev/${d##*/}
done
[ -n "$rec" ] || { say "FAIL: no disk with serial ukdump-rec"; exit 1; }

# LVM on partitions 2 and 3 of the NVMe disk: a linear and a striped volume.
if command -v lvcreate >/dev/null; then
	modprobe dm_mod
	pvcreate -ff -y /dev/nvme0n1p2 /dev/nvme0n1p3 &&
		vgcreate vg0 /dev/nvme0n1p2 /dev/nvme0n1p3 &&
		lvcreate -y -n crash -L 32M vg0 /dev/nvme0n1p2 &&
		lvcreate -y -n stripe -i 2 -I 64k -L 32M vg0 ||
		say "FAIL: lvm"
	udevadm settle
	dmsetup table >"$out/info/dmsetup-table.txt"
fi

copy() { # a file or link under /sys
	[ -e "$out$1" ] || [ -L "$out$1" ] && return 0
	mkdir -p "$out${1%/*}"
	if [ -L "$1" ]; then
		ln -s "$(readlink "$1")" "$out$1"
	elif [ -f "$1" ]; then
		cat "$1" >"$out$1" 2>/dev/null || rm -f "$out$1"
	fi
}
node() { # a directory under /sys/devices
	[ -e "$out$1/.rec" ] && return 0
	mkdir -p "$out$1"
	: >"$out$1/.rec"
	for f in modalias uevent dev partition size driver subsystem device; do
		[ -e "$1/$f" ] || [ -L "$1/$f" ] && copy "$1/$f"
	done
	if [ -L "$1/driver" ]; then
		drv=$(readlink -f "$1/driver")
		mkdir -p "$out$drv"
		[ -L "$drv/module" ] && copy "$drv/module"
	fi
	for sub in slaves holders multipath; do
		[ -d "$1/$sub" ] || continue
		mkdir -p "$out$1/$sub"
		for s in "$1/$sub"/*; do
			[ -L "$s" ] && copy "$s"
		done
	done
	for f in dm/name dm/uuid dm/suspended md/level md/metadata_version; do
		[ -f "$1/$f" ] && copy "$1/$f"
	done
}
up() { # a directory and its parents up to /sys/devices
	d=$1
	while [ "$d" != /sys/devices ] && [ "$d" != /sys ] && [ -n "$d" ]; do
		node "$d"
		d=${d%/*}
	done
}
for c in /sys/class/block/*; do
	copy "$c"
	up "$(readlink -f "$c")"
	[ -L "$c/device" ] && up "$(readlink -f "$c/device")"
done
find "$out" -name .rec -delete

uname -r >"$out/info/release.txt"
cut -d' ' -f1 /proc/modules | sort >"$out/info/modules.txt"
lsblk -o NAME,MAJ:MIN,TYPE,SIZE,MODEL >"$out/info/lsblk.txt" 2>&1
tar -C "$out" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$rec" . && sync &&
	say "done: $(find "$out" | wc -l) entries on $rec" || say "FAIL: tar"
