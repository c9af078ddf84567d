// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// VmlinuxOptions configures Vmlinux. The zero value uses the defaults.
type VmlinuxOptions struct {
	// CacheDir holds the vmlinux files. Default: DefaultCacheDir().
	CacheDir string
	// Log receives one line per step. Default: discard.
	Log *slog.Logger
}

// DbgPackage returns the Debian package with the debug symbols of a kernel
// release: linux-image-RELEASE-dbg, for the signed 6.1 and the unsigned
// 6.12 kernels alike.
func DbgPackage(release string) string { return "linux-image-" + release + "-dbg" }

// Vmlinux returns the path of the vmlinux with debug info of a Debian kernel
// release, for crash and drgn: CacheDir/vmlinux-RELEASE. If the cache has
// none, it downloads DbgPackage(release) from the host's apt sources into a
// temporary directory (apt-get download; about 1 GB), extracts only
// ./usr/lib/debug/boot/vmlinux-RELEASE from it, deletes the package and
// renames the file into place, under a lock: a killed run leaves no file.
func Vmlinux(ctx context.Context, release string, opts VmlinuxOptions) (string, error) {
	if err := needTools("apt-get", "dpkg-deb", "tar"); err != nil {
		return "", err
	}
	if release == "" || strings.ContainsAny(release, "/ ") {
		return "", fmt.Errorf("vmlinux: bad kernel release %q", release)
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	final := filepath.Join(dir, "vmlinux-"+release)
	if _, err := os.Stat(final); err == nil {
		log.Info("vmlinux: cached", "path", final)
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(final + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	stale, _ := filepath.Glob(final + ".tmp-*") // only a malformed pattern fails
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(dir, "vmlinux-"+release+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// apt-get download drops privileges to _apt, which must write here.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return "", err
	}
	r := runner{log: log, dir: tmp}
	pkg := DbgPackage(release)
	member := "./usr/lib/debug/boot/vmlinux-" + release
	var deb string
	steps := []step{
		{"apt-get download " + pkg, func() error {
			if err := r.run(ctx, nil, nil, "apt-get", "-q", "download", pkg); err != nil {
				return fmt.Errorf("%w (is %s in the apt lists? apt-cache policy %s; apt-get update)", err, pkg, pkg)
			}
			m, _ := filepath.Glob(filepath.Join(tmp, "*.deb")) // only a malformed pattern fails
			if len(m) != 1 {
				return fmt.Errorf("apt-get download %s left %d .deb files in %s", pkg, len(m), tmp)
			}
			deb = m[0]
			return nil
		}},
		{"extract " + member, func() error { return extract(ctx, deb, member, tmp) }},
		{"delete the package", func() error { return os.Remove(deb) }},
		{"rename into the cache", func() error { return os.Rename(filepath.Join(tmp, member), final) }},
	}
	start := time.Now()
	if err := runSteps(log, "vmlinux", steps); err != nil {
		return "", fmt.Errorf("vmlinux %s: %w", release, err)
	}
	log.Info("vmlinux: ready", "path", final, "took", time.Since(start).Round(time.Millisecond))
	return final, nil
}

// extract writes member of the data archive of deb under dir:
// dpkg-deb --fsys-tarfile DEB | tar -x --occurrence=1 -C DIR MEMBER.
// tar stops reading once it has the member (its exit status says whether
// the member is whole), so dpkg-deb's broken pipe that follows is no error.
func extract(ctx context.Context, deb, member, dir string) error {
	dpkg := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	tar := exec.CommandContext(ctx, "tar", "-x", "--occurrence=1", "-C", dir, member)
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	var dpkgErr, tarErr tailBuffer
	dpkgErr.max, tarErr.max = 2048, 2048
	dpkg.Stdout, dpkg.Stderr = pw, &dpkgErr
	tar.Stdin, tar.Stderr = pr, &tarErr
	err = tar.Start()
	if err == nil {
		if err = dpkg.Start(); err != nil {
			tar.Process.Kill()
			tar.Wait()
		}
	}
	// Only the children hold the pipe now: when tar exits, dpkg-deb's writes fail.
	pr.Close()
	pw.Close()
	if err != nil {
		return err
	}
	terr := tar.Wait()
	derr := dpkg.Wait()
	if terr != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s | tar -x %s: %w: %s (dpkg-deb: %v: %s)", deb, member, terr, tarErr.b, derr, dpkgErr.b)
	}
	// A dpkg-deb error now is the broken pipe after tar had the whole member.
	if _, err := os.Stat(filepath.Join(dir, member)); err != nil {
		return errors.Join(fmt.Errorf("%s has no %s", deb, member), err)
	}
	return nil
}
