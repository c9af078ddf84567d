// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNoKernel is returned when a guest tree has no kernel of a release.
var ErrNoKernel = errors.New("no such kernel in the guest tree")

// Releases returns the kernel releases installed in the guest tree root
// (boot/vmlinuz-RELEASE), oldest first.
func Releases(root string) ([]string, error) {
	return HostReleases(filepath.Join(root, "boot"))
}

// Kernel returns the paths, on the host, of the kernel and the initrd of
// release in the guest tree root: boot/vmlinuz-RELEASE and
// boot/initrd.img-RELEASE, the initrd made by initramfs-tools in the guest.
func Kernel(root, release string) (vmlinuz, initrd string, err error) {
	vmlinuz = filepath.Join(root, "boot", "vmlinuz-"+release)
	initrd = filepath.Join(root, "boot", "initrd.img-"+release)
	for _, p := range []string{vmlinuz, initrd} {
		if _, err := os.Stat(p); err != nil {
			rels, _ := Releases(root) // only for the message
			return "", "", fmt.Errorf("%w: %s (%v; the tree has %s)", ErrNoKernel, release, err, strings.Join(rels, ", "))
		}
	}
	return vmlinuz, initrd, nil
}

// LatestRelease returns the newest release in rels whose name starts with
// prefix ("6.1.", "6.12."), for tests that want "the 6.1 kernel" without
// naming a point release.
func LatestRelease(rels []string, prefix string) (string, error) {
	var m []string
	for _, r := range rels {
		if strings.HasPrefix(r, prefix) {
			m = append(m, r)
		}
	}
	if len(m) == 0 {
		return "", fmt.Errorf("%w: none of %s starts with %q", ErrNoKernel, strings.Join(rels, ", "), prefix)
	}
	slices.SortFunc(m, compareVersions)
	return m[len(m)-1], nil
}
