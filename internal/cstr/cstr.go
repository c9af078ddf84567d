// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package cstr reads the NUL-terminated strings of on-disk structures
// (utsname fields, note names, file system labels, VMCOREINFO).
package cstr

import "bytes"

// String returns b up to its first NUL byte (all of b if it has none).
func String(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
