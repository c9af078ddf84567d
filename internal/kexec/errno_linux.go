// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import "golang.org/x/sys/unix"

// Errors of signature verification, which have no name in package syscall on every OS.
const (
	errKeyRejected = unix.EKEYREJECTED
	errBadMsg      = unix.EBADMSG
	errNoKey       = unix.ENOKEY
	errNoData      = unix.ENODATA
	errNoPkg       = unix.ENOPKG
)
