// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command capture is the ukdump capture program: /init of the capture
// initramfs. It saves the crashed kernel's memory to the configured targets
// and reboots (or takes the configured action).
//
// Synopsis:
//
//	capture
//
// Description:
//
//	Reads /etc/ukdump/ukdump.toml and ukdump.* overrides from /proc/cmdline,
//	loads the modules in /etc/ukdump/modules.load, finds /proc/vmcore (or
//	/dev/oldmem with elfcorehdr=), saves it, writes manifest.json and
//	ukdump.log, and ends with the final or failure action. Arguments (unknown
//	kernel command-line words) are ignored.
package main

import (
	"os"

	"github.com/ukdump/ukdump/internal/capture"
	"github.com/ukdump/ukdump/internal/version"
)

func main() { os.Exit(capture.Main(version.Version, os.Args[1:])) }
