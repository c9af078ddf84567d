// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Command bbcmds prints the capture busybox's Go packages (layout's list),
// one a line: the Makefile's BB_CMDS.
//
// Synopsis:
//
//	go run ./internal/layout/cmd/bbcmds
package main

import (
	"fmt"
	"strings"

	"github.com/ukdump/ukdump/internal/layout"
)

func main() { fmt.Println(strings.Join(layout.BusyboxPackages(), "\n")) }
