// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package kexec

import "syscall"

// Errors of signature verification, numbered as on Linux (asm-generic).
// Other systems never return them; they exist so that this package builds.
const (
	errKeyRejected = syscall.Errno(129)
	errBadMsg      = syscall.Errno(74)
	errNoKey       = syscall.Errno(126)
	errNoData      = syscall.Errno(61)
	errNoPkg       = syscall.Errno(65)
)
