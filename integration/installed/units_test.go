// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package installed

import (
	"fmt"
	"strings"

	"github.com/ukdump/ukdump/integration/guest"
)

// The test's side in the guest: one script, run by the units below at the
// steps of a scenario. Every line it prints goes straight to the serial
// console (not through the journal, which a crash may not flush), prefixed
// "ukdump-e2e: STEP: ".
const (
	stepPath = "/usr/local/lib/ukdump-e2e/step"
	// crashedMark is written and synced just before the crash: the first
	// boot crashes, the boot after it reports.
	crashedMark = "/var/lib/ukdump-e2e/crashed"
	prefix      = "ukdump-e2e: "
)

// stepScript is the guest's side of a scenario:
//
//	prepare    how ukdump.service did and the images it left, then power off
//	refuse R   ukdump load with kernel R's image against the running kernel
//	crash      how ukdump.service did, ukdump test, then ukdump test --yes
//	report     the boot after the crash: the boot report's journal and
//	           ukdump status, then power off
//	lvm DEV    the server layout, once: an LVM2 volume group on the
//	           partition DEV, a logical volume with XFS in it mounted on
//	           /var/crash (and in /etc/fstab for the boots after)
//
// The steps that should end the boot power off when they fail, so a broken
// run costs seconds, not the test's timeout.
const stepScript = `#!/bin/sh
# ukdump-e2e step: the guest's side of ukdump's installed-system test
# (integration/installed). Prints to the console, "ukdump-e2e: STEP: ...".
set -u
exec >/dev/console 2>&1
step=$1
say() { echo "ukdump-e2e: $step: $*"; }
prefixed() { sed -u "s|^|ukdump-e2e: $step: $1|"; }
# unit U: its state and this boot's journal.
unit() {
	say "$1: $(systemctl is-active "$1")"
	journalctl -b -u "$1" -o cat --no-pager | prefixed "$1: "
}
case $step in
prepare)
	say "boot $(uname -r)"
	unit ukdump.service
	say "images: $(cd /var/lib/ukdump && echo *)"
	say done
	systemctl --no-block poweroff
	;;
refuse)
	img=/var/lib/ukdump/ukdump-$2.img
	say "boot $(uname -r)"
	say "ukdump load --initrd $img"
	out=$(ukdump load --initrd "$img" 2>&1)
	rc=$?
	printf '%s\n' "$out" | prefixed "load: "
	say "load exit $rc"
	say "kexec_crash_loaded $(cat /sys/kernel/kexec_crash_loaded)"
	;;
crash)
	say "boot $(uname -r)"
	unit ukdump.service
	unit ukdump-report.service
	out=$(ukdump test 2>&1)
	rc=$?
	printf '%s\n' "$out" | prefixed "test: "
	say "test exit $rc"
	mkdir -p "$(dirname ` + crashedMark + `)"
	date -u +%s >` + crashedMark + `
	sync
	say "ukdump test --yes"
	ukdump test --yes
	say "ukdump test --yes returned $?: no crash; powering off"
	systemctl --no-block poweroff
	;;
report)
	say "boot $(uname -r)"
	unit ukdump.service
	unit ukdump-report.service
	out=$(ukdump status 2>&1)
	rc=$?
	printf '%s\n' "$out" | prefixed "status: "
	say "status exit $rc"
	say "failed units: $(systemctl list-units --state=failed --plain --no-legend | wc -l)"
	systemctl list-units --state=failed --plain --no-legend | prefixed "failed: "
	say done
	systemctl --no-block poweroff
	;;
lvm)
	if grep -q ' /var/crash ' /etc/fstab; then
		say "/var/crash: $(findmnt -n -o SOURCE,FSTYPE /var/crash)"
		exit 0
	fi
	set -e
	pvcreate -q "$2" 2>&1 | prefixed ""
	vgcreate -q ` + lvmVG + ` "$2" 2>&1 | prefixed ""
	lvcreate -q -y -n ` + lvmLV + ` -L 2G ` + lvmVG + ` 2>&1 | prefixed ""
	mkfs.xfs -q -L crashlv /dev/` + lvmVG + `/` + lvmLV + ` 2>&1 | prefixed ""
	mkdir -p /var/crash
	mount /dev/` + lvmVG + `/` + lvmLV + ` /var/crash
	echo '/dev/` + lvmVG + `/` + lvmLV + ` /var/crash xfs defaults 0 2' >>/etc/fstab
	sync
	say "/var/crash: $(findmnt -n -o SOURCE,FSTYPE /var/crash) on $(lvs --noheadings -o lv_name,vg_name,devices ` + lvmVG + ` | xargs)"
	;;
*)
	say "unknown step"
	systemctl --no-block poweroff
	;;
esac
exit 0
`

// A unit is one of the test's systemd units: it runs a step.
type unit struct {
	name, description string
	// step and its arguments: ExecStart=stepPath step args.
	step string
	args []string
	// unit is more of the [Unit] section, one directive a line.
	unit []string
}

func (u unit) file() guest.File {
	exec := strings.Join(append([]string{stepPath, u.step}, u.args...), " ")
	data := fmt.Sprintf("# %s: written by ukdump's installed-system test (integration/installed).\n"+
		"[Unit]\nDescription=%s\n%s\n\n[Service]\nType=oneshot\nExecStart=%s\n\n[Install]\nWantedBy=multi-user.target\n",
		u.name, u.description, strings.Join(u.unit, "\n"), exec)
	return guest.File{Path: "/etc/systemd/system/" + u.name, Data: []byte(data)}
}

// The units of the scenarios. ConditionKernelVersion= (a glob, here the
// literal release) keeps a unit to the boots of one kernel.
func prepareUnit(release string) unit {
	return unit{name: "ukdump-e2e-prepare.service", description: "ukdump e2e: the image of " + release + ", then power off",
		step: "prepare", unit: []string{"After=ukdump.service ukdump-report.service", "ConditionKernelVersion=" + release}}
}

// refuseUnit runs before ukdump.service, in the boot of release (before the
// crash), and loads imageRelease's image.
func refuseUnit(release, imageRelease string) unit {
	return unit{name: "ukdump-e2e-refuse.service", description: "ukdump e2e: ukdump load refuses the image of " + imageRelease,
		step: "refuse", args: []string{imageRelease},
		unit: []string{"After=local-fs.target", "Before=ukdump.service", "RequiresMountsFor=/var/lib/ukdump /boot",
			"ConditionKernelVersion=" + release, "ConditionPathExists=!" + crashedMark}}
}

// The volume group and logical volume of the lvm step.
const (
	lvmVG = "vgcrash"
	lvmLV = "dumps"
)

// lvmUnit makes the LVM layout on the partition dev before ukdump.service
// builds the image.
func lvmUnit(dev string) unit {
	d := strings.TrimPrefix(strings.ReplaceAll(dev, "/", "-"), "-") + ".device" // dev-nvme0n1p1.device
	return unit{name: "ukdump-e2e-lvm.service", description: "ukdump e2e: /var/crash on LVM on " + dev,
		step: "lvm", args: []string{dev},
		unit: []string{"After=local-fs.target " + d, "Requires=" + d, "Before=ukdump.service",
			"ConditionPathExists=!" + crashedMark}}
}

func crashUnit(release string) unit {
	return unit{name: "ukdump-e2e-crash.service", description: "ukdump e2e: crash once with ukdump test --yes",
		step: "crash", unit: []string{"After=ukdump.service ukdump-report.service",
			"ConditionKernelVersion=" + release, "ConditionPathExists=!" + crashedMark}}
}

func reportUnit() unit {
	return unit{name: "ukdump-e2e-report.service", description: "ukdump e2e: after the crash, ukdump status, then power off",
		step: "report", unit: []string{"After=ukdump.service ukdump-report.service", "ConditionPathExists=" + crashedMark}}
}

// guestFiles returns the script and the units' files, and the units to
// enable.
func guestFiles(units ...unit) ([]guest.File, []string) {
	files := []guest.File{{Path: stepPath, Data: []byte(stepScript), Mode: 0o755}}
	var names []string
	for _, u := range units {
		files = append(files, u.file())
		names = append(names, u.name)
	}
	return files, names
}
