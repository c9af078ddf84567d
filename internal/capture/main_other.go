// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package capture

import "fmt"

// Main is the capture kernel's init; the capture runs only on Linux.
func Main(version string, args []string) int {
	fmt.Println("ukdump capture: runs only in a Linux capture kernel")
	return 1
}
