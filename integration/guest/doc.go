// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package guest builds and boots a real installed Debian 12 system for the
// end-to-end tests: the "production machine" that runs ukdump under systemd.
//
// Root debootstraps a Debian 12 root file system (minbase from bookworm,
// bookworm-updates and bookworm-security, taken from this machine's own apt
// sources) with systemd, udev, kmod, e2fsprogs and exactly the kernel
// releases installed in this machine's /boot, and caches it outside the
// repository, keyed by its inputs. Disk turns a copy of it, with extra .debs,
// files and systemd units, into a GPT disk image with one ext4 root
// partition, without mounting a file system. Kernel finds a release's vmlinuz and
// initrd in the tree, Start boots the disk in QEMU (TCG, no network) and
// watches its serial console, and Vmlinux fetches a release's vmlinux with
// debug info for crash.
//
// Everything needs root and the tools scripts/deps.sh installs. The tests
// carry the build tag e2e and fail, never skip, when a tool is missing:
//
//	go test -tags e2e ./integration/guest/ -v
//
// The cache lives in /var/cache/ukdump-test unless $UKDUMP_TEST_CACHE names
// another directory.
package guest
