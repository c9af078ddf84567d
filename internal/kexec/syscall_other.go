// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux || !(amd64 || arm || arm64 || loong64 || ppc || ppc64 || ppc64le || riscv64 || s390x)

package kexec

import "syscall"

// kexecFileLoad fails with ENOSYS where golang.org/x/sys/unix has no kexec_file_load.
func kexecFileLoad(kernelFd, initrdFd int, cmdline string, flags int) error {
	return syscall.ENOSYS
}
