// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package e2e is ukdump's end-to-end test: for each scenario of one table, a
// real Debian kernel crashes in QEMU, ukdump's capture kernel saves the dump,
// and the host checks what was saved with tools that are not ukdump's
// (integration/internal/crashvm has the harness and the shared checks).
//
// The test carries the build tag e2e, needs root (network namespaces, the
// test's sshd) and what make builds, and fails, never skips, when something is
// missing. make e2e runs it all (6-8 minutes on 2 cores, one scenario at a
// time); one scenario:
//
//	make all out/stage1-init
//	go test -tags e2e -run 'TestE2E/kill$' ./integration/e2e/ -v
//
// All of them take longer than go test's default -timeout of 10m on a slow
// machine: give -timeout 60m, as make e2e does.
//
// Each scenario keeps its files in out/e2e-NAME (out/e2e for elf): the
// config, the capture image, the serial log, the disk, and dump/, the copy of
// what the capture saved. The interop tests read out/e2e/dump/vmcore and
// out/e2e-612elf/dump/vmcore.
package e2e
