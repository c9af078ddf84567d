// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// makeDisk makes the crashdump disk: a sparse image of size bytes with an
// empty ext4 labelled crashdump.
func makeDisk(ctx context.Context, file string, size int64) error {
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", Disk.Label, file).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w\n%s", file, err, out)
	}
	return nil
}

// replayJournal replays the journal of the ext4 on disk (e2fsck -E
// journal_only -p), its output in log. Its status is for the checks.
func replayJournal(ctx context.Context, disk, log string) (*Fsck, error) {
	out, err := exec.CommandContext(ctx, "e2fsck", "-E", "journal_only", "-p", disk).CombinedOutput()
	if werr := os.WriteFile(log, out, 0o644); werr != nil {
		return nil, werr
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return &Fsck{Log: log}, nil
	case errors.As(err, &exit):
		return &Fsck{Status: exit.ExitCode(), Log: log}, nil
	}
	return nil, fmt.Errorf("e2fsck: %w", err)
}

// A debugfsEntry is one line of debugfs's ls -p.
type debugfsEntry struct {
	name string
	dir  bool
	reg  bool
}

// debugfsLs lists dir on the ext4 image disk without mounting it. A missing
// dir is an empty list.
func debugfsLs(ctx context.Context, disk, dir string) ([]debugfsEntry, error) {
	out, err := exec.CommandContext(ctx, "debugfs", "-R", "ls -p "+dir, disk).Output()
	if err != nil {
		return nil, fmt.Errorf("debugfs -R 'ls -p %s' %s: %w", dir, disk, err)
	}
	return parseLsP(string(out)), nil
}

// parseLsP reads debugfs's ls -p lines: /INODE/MODE/UID/GID/NAME/SIZE/, MODE
// in octal.
func parseLsP(out string) []debugfsEntry {
	var ents []debugfsEntry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "/")
		if len(f) < 7 || f[0] != "" || f[5] == "." || f[5] == ".." {
			continue
		}
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil {
			continue
		}
		ents = append(ents, debugfsEntry{
			name: f[5],
			dir:  mode&unix.S_IFMT == unix.S_IFDIR,
			reg:  mode&unix.S_IFMT == unix.S_IFREG,
		})
	}
	return ents
}

// debugfsCopy copies the regular files of dir on disk to res.Dump.
func debugfsCopy(ctx context.Context, disk, dir string, res *Result) error {
	ents, err := debugfsLs(ctx, disk, dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.reg {
			continue
		}
		res.Saved = append(res.Saved, e.name)
		src := path.Join(dir, e.name)
		if out, err := exec.CommandContext(ctx, "debugfs", "-R", "dump "+src+" "+res.File(e.name), disk).CombinedOutput(); err != nil {
			return fmt.Errorf("debugfs -R 'dump %s' %s: %w\n%s", src, disk, err, out)
		}
	}
	return nil
}
