// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A File is a file Disk writes into the guest.
type File struct {
	Path string      // absolute path in the guest
	Data []byte      // contents
	Mode os.FileMode // permission bits; 0 means 0644
}

// DiskOptions configures Disk. The zero value makes a disk of the tree alone.
type DiskOptions struct {
	// Path is the disk image to write. Default: a new file in os.TempDir().
	Path string
	// Size is the image size in bytes, rounded up to a MiB. Default: the
	// tree's size plus a third, plus 1 GiB of free space (room for dumps).
	// The file is sparse.
	Size int64
	// UUID is the root file system's UUID. Default: a random one.
	UUID string
	// Debs are .deb files on the host, installed first with dpkg -i
	// (one call, so they may depend on each other).
	Debs []string
	// Files are written next, over the tree and the packages' files.
	Files []File
	// Units are systemd units enabled last (systemctl enable in the
	// guest): a unit of Files or of Debs, or one of the tree.
	Units []string
	// Log receives one line per step. Default: discard.
	Log *slog.Logger
}

// Root partition layout: GPT, the partition starting at 1 MiB.
const (
	sector    = 512
	partStart = 1 << 20
	// gptTail is what the backup GPT needs at the end of the disk: a header
	// sector and 32 sectors of partition entries.
	gptTail = 33 * sector
	// linuxFS is the GPT type of a Linux file system partition.
	linuxFS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// RootOffset is where the root file system starts in a Disk image, in bytes:
// for tools that read it without a partition table (debugfs IMAGE?offset=N).
const RootOffset = partStart

// Disk makes a disk image from the guest tree root (from Root): a GPT with
// one ext4 partition holding a copy of root with /etc/fstab naming it by
// UUID, opts.Debs installed, opts.Files written and opts.Units enabled. It
// returns the image's path and the root file system's UUID (boot with
// root=UUID=…). Nothing the host sees is mounted: the copy, made beside the
// image and removed after, is changed in a chroot (with /proc mounted in a
// private mount namespace) and written into the partition by mkfs.ext4 -d
// with an offset.
func Disk(ctx context.Context, root string, opts DiskOptions) (path, rootUUID string, err error) {
	if err := needTools("cp", "unshare", "chroot", "sfdisk", "mkfs.ext4"); err != nil {
		return "", "", err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(root, "sbin/init")); err != nil {
		return "", "", fmt.Errorf("%s is no guest tree: %w", root, err)
	}
	uuid := opts.UUID
	if uuid == "" {
		uuid = newUUID()
	}
	path = opts.Path
	if path == "" {
		f, err := os.CreateTemp("", "ukdump-guest-*.img")
		if err != nil {
			return "", "", err
		}
		f.Close()
		path = f.Name()
	}
	work, err := os.MkdirTemp(filepath.Dir(path), ".guest-root-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)
	r := runner{log: log}
	tree := filepath.Join(work, "root")
	var size int64
	steps := []step{
		{"copy the tree", func() error { return r.run(ctx, nil, nil, "cp", "-a", root, tree) }},
		{"write /etc/fstab", func() error {
			return writeFiles(tree, []File{{Path: "/etc/fstab", Data: []byte(fstab(uuid))}})
		}},
	}
	if len(opts.Debs) > 0 {
		steps = append(steps, step{"dpkg -i " + strings.Join(opts.Debs, " "), func() error {
			return installDebs(ctx, r, tree, opts.Debs)
		}})
	}
	if len(opts.Files) > 0 {
		steps = append(steps, step{fmt.Sprintf("write %d files", len(opts.Files)), func() error { return writeFiles(tree, opts.Files) }})
	}
	if len(opts.Units) > 0 {
		steps = append(steps, step{"systemctl enable " + strings.Join(opts.Units, " "), func() error {
			return r.chroot(ctx, tree, append([]string{"systemctl", "enable"}, opts.Units...)...)
		}})
	}
	steps = append(steps,
		step{"size the disk", func() error {
			used, err := treeSize(tree)
			if err != nil {
				return err
			}
			need := partStart + used + used/3 + gptTail
			if size = opts.Size; size == 0 {
				size = need + 1<<30
			} else if size < need {
				return fmt.Errorf("size %d bytes is too small for a tree of %d bytes (want at least %d)", size, used, need)
			}
			size = (size + 1<<20 - 1) &^ (1<<20 - 1)
			return nil
		}},
		step{"sfdisk (GPT, one ext4 partition)", func() error {
			f, err := os.Create(path) // empty, then sparse to size
			if err != nil {
				return err
			}
			err = f.Truncate(size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			script := fmt.Sprintf("label: gpt\nunit: sectors\nstart=%d, size=%d, type=%s, name=root\n",
				partStart/sector, partSize(size)/sector, linuxFS)
			return r.run(ctx, nil, strings.NewReader(script), "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path)
		}},
		step{"mkfs.ext4 -d into the partition", func() error {
			// Into the partition's place in the image; nodiscard: on a file,
			// a discard would punch holes, and the image is sparse anyway.
			return r.run(ctx, nil, nil, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid,
				"-E", "offset="+strconv.Itoa(partStart)+",nodiscard", "-d", tree,
				path, strconv.FormatInt(partSize(size)/1024, 10)+"k")
		}},
	)
	start := time.Now()
	if err := runSteps(log, "guest disk", steps); err != nil {
		if opts.Path == "" {
			os.Remove(path)
		}
		return "", "", fmt.Errorf("guest disk %s: %w", path, err)
	}
	log.Info("guest disk: made", "path", path, "size", size, "uuid", uuid, "took", time.Since(start).Round(time.Millisecond))
	return path, uuid, nil
}

// partSize returns the size of the root partition on a disk of size bytes:
// everything from partStart to the backup GPT, in whole MiB.
func partSize(size int64) int64 {
	return (size - partStart - gptTail) &^ (1<<20 - 1)
}

// installDebs copies debs into the tree and installs them with one dpkg -i.
func installDebs(ctx context.Context, r runner, tree string, debs []string) error {
	const dir = "/var/tmp/ukdump-guest-debs"
	var args []string
	for _, d := range debs {
		b, err := os.ReadFile(d)
		if err != nil {
			return err
		}
		p := dir + "/" + filepath.Base(d)
		if err := writeFiles(tree, []File{{Path: p, Data: b}}); err != nil {
			return err
		}
		args = append(args, p)
	}
	// Maintainer scripts start no service in the chroot.
	const policy = "/usr/sbin/policy-rc.d"
	if err := writeFiles(tree, []File{{Path: policy, Data: []byte("#!/bin/sh\nexit 101\n"), Mode: 0o755}}); err != nil {
		return err
	}
	if err := r.chroot(ctx, tree, append([]string{"dpkg", "--force-confdef", "--force-confold", "-i"}, args...)...); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(tree, policy)); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(tree, dir))
}

// writeFiles writes files into the tree at root, creating parent directories.
// A file that replaces a symbolic link replaces the link, not its target.
func writeFiles(root string, files []File) error {
	for _, f := range files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path {
			return fmt.Errorf("guest file %q: want a clean absolute path", f.Path)
		}
		p := filepath.Join(root, f.Path)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := writeFile(p, f.Data, mode); err != nil {
			return err
		}
	}
	return nil
}

// treeSize returns the bytes the files under dir take (4 KiB blocks, each
// directory one block).
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += (fi.Size() + 4095) &^ 4095
		if d.IsDir() {
			n += 4096
		}
		return nil
	})
	return n, err
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never returns an error: it crashes the program instead (Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
