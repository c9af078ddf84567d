// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

// ReadyLine is the last line ReadyUnit prints on the console.
const ReadyLine = "ukdump-guest: ready"

// ReadyUnitName is the name of ReadyUnit's unit, for DiskOptions.Units.
const ReadyUnitName = "ukdump-guest-ready.service"

// ReadyUnit returns a systemd unit, to put in DiskOptions.Files and enable
// with DiskOptions.Units, that runs once multi-user.target is reached and
// prints to the console (one line each, prefixed "ukdump-guest: "):
// "uname -r: RELEASE", "cmdline: …", "root: DEVICE UUID", "failed units: N"
// and then ReadyLine. If poweroff is set, it then powers the guest off,
// which ends QEMU.
func ReadyUnit(poweroff bool) File {
	unit := `[Unit]
Description=ukdump guest test: say ready on the console
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec >/dev/console 2>&1; \
  echo "ukdump-guest: uname -r: $(uname -r)"; \
  echo "ukdump-guest: cmdline: $(cat /proc/cmdline)"; \
  echo "ukdump-guest: root: $(findmnt -n -o SOURCE,UUID /)"; \
  echo "ukdump-guest: failed units: $(systemctl list-units --state=failed --plain --no-legend | wc -l)"; \
  systemctl list-units --state=failed --plain --no-legend | sed "s/^/ukdump-guest: failed: /"; \
  echo "` + ReadyLine + `"'
`
	if poweroff {
		unit += "ExecStartPost=/bin/systemctl --no-block poweroff\n"
	}
	unit += "\n[Install]\nWantedBy=multi-user.target\n"
	return File{Path: "/etc/systemd/system/" + ReadyUnitName, Data: []byte(unit)}
}
