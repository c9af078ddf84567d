// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package interop checks ukdump's kdump-compressed files against the real
// tools that read them: crash, makedumpfile and libkdumpfile, on the ELF
// core the QEMU end-to-end run saved (out/e2e/dump/vmcore; make e2e).
//
// The tests carry the build tag interop:
//
//	go test -tags interop ./integration/interop/
package interop
