// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package layout is the capture image's layout: where the image builder
// (initramfs, ukdump build) puts each file the capture program reads, and
// the capture busybox's commands. Both sides take these from here; the
// Makefile's BB_CMDS too (cmd/bbcmds). It imports nothing of ours.
package layout

import (
	"fmt"
	"path"
	"slices"
)

// Paths in the image, relative to its root.
const (
	// ConfigDir holds the config, modules.load and the network targets'
	// SSH files (mode 0700).
	ConfigDir = "etc/ukdump"
	// ConfigPath is the config, as TOML.
	ConfigPath = ConfigDir + "/ukdump.toml"
	// ModulesLoadPath lists the module files to load, in order: one path
	// relative to the root a line.
	ModulesLoadPath = ConfigDir + "/modules.load"
	// RecordPath is the record of what went into the image (JSON): its
	// kernel release and the hashes of its inputs. ukdump build also writes
	// it beside the image, as IMAGE + RecordSuffix.
	RecordPath = ConfigDir + "/image.json"
	// MachineIDPath is the production system's /etc/machine-id, baked in
	// at build time: the manifest carries it, so that dumps of hosts that
	// share a name stay apart.
	MachineIDPath = ConfigDir + "/machine-id"
	// ModulesDir holds the modules, in ModulesDir/<kernel release>/<path
	// in modules.dep>.
	ModulesDir = "lib/modules"
	// BinDir holds the busybox and a link to it for each of its commands.
	BinDir = "bbin"
	// Busybox is the busybox binary.
	Busybox = BinDir + "/bb"
	// Init is what the kernel runs: a link to InitTarget.
	Init = "init"
	// InitTarget is the capture program's link to the busybox.
	InitTarget = BinDir + "/capture"
	// Shell is the shell of the final action "shell".
	Shell = BinDir + "/gosh"
	// Kmsg is the kernel log, which the capture opens before it mounts
	// devtmpfs: the image has the node.
	Kmsg = "dev/kmsg"
	// MountDir holds the mount points of the disk targets: target<i> for
	// the config's target i.
	MountDir = "mnt"
)

// RecordSuffix names the record beside an image: ukdump-6.1.0-57-amd64.img.json.
const RecordSuffix = ".json"

// Where an installed ukdump keeps its images: one per kernel release.
const (
	ImageDir = "/var/lib/ukdump"
	// DefaultConfig is the config ukdump build and load read by default.
	DefaultConfig = "/etc/ukdump/ukdump.toml"
)

// ImagePath is the image of a kernel release: /var/lib/ukdump/ukdump-<release>.img.
func ImagePath(release string) string { return ImageDir + "/ukdump-" + release + ".img" }

// TargetIdentity is where the image holds the SSH private key of the
// config's target i.
func TargetIdentity(i int) string { return fmt.Sprintf(ConfigDir+"/target%d/id", i) }

// TargetKnownHosts is where the image holds the known_hosts of the config's
// target i.
func TargetKnownHosts(i int) string { return fmt.Sprintf(ConfigDir+"/target%d/known_hosts", i) }

// TargetS3AccessKey, TargetS3SecretKey and TargetCAFile are where the image
// holds an s3 target's credentials and ca_file (config's target i).
func TargetS3AccessKey(i int) string { return fmt.Sprintf(ConfigDir+"/target%d/s3-access-key", i) }
func TargetS3SecretKey(i int) string { return fmt.Sprintf(ConfigDir+"/target%d/s3-secret-key", i) }
func TargetCAFile(i int) string      { return fmt.Sprintf(ConfigDir+"/target%d/ca.pem", i) }

// CABundlePath is the build host's CA bundle in the image (Debian's
// ca-certificates file; also where Go looks first on Linux): an https s3
// target without ca_file verifies its server against it.
const CABundlePath = "etc/ssl/certs/ca-certificates.crt"

// busyboxPackages are the capture busybox's commands as makebb takes them
// from the module's root: our capture program and ukdump, plus a small
// rescue set of u-root core commands (a shell and the tools to look around
// with). tools.go must import the u-root ones, so that go.mod pins them.
var busyboxPackages = []string{
	"./cmds/capture",
	"./cmds/ukdump",
	"github.com/u-root/u-root/cmds/core/gosh",
	"github.com/u-root/u-root/cmds/core/ls",
	"github.com/u-root/u-root/cmds/core/cat",
	"github.com/u-root/u-root/cmds/core/cp",
	"github.com/u-root/u-root/cmds/core/mount",
	"github.com/u-root/u-root/cmds/core/umount",
	"github.com/u-root/u-root/cmds/core/dmesg",
	"github.com/u-root/u-root/cmds/core/ip",
	"github.com/u-root/u-root/cmds/core/ps",
	"github.com/u-root/u-root/cmds/core/df",
	"github.com/u-root/u-root/cmds/core/sync",
	"github.com/u-root/u-root/cmds/core/mkdir",
	"github.com/u-root/u-root/cmds/core/rm",
	"github.com/u-root/u-root/cmds/core/mv",
	"github.com/u-root/u-root/cmds/core/free",
	"github.com/u-root/u-root/cmds/core/uname",
}

// BusyboxPackages returns the Go packages of the capture busybox's
// commands, in order, as makebb takes them from the module's root.
func BusyboxPackages() []string { return slices.Clone(busyboxPackages) }

// BusyboxCommands returns the names of the capture busybox's commands (the
// last element of each package), which the image links to the busybox as
// BinDir/<name>.
func BusyboxCommands() []string {
	names := make([]string, len(busyboxPackages))
	for i, p := range busyboxPackages {
		names[i] = path.Base(p)
	}
	return names
}
