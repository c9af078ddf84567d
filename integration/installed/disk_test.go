// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package installed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
)

// An ext4 is the guest's root file system, read on the host with debugfs at
// the root partition's offset in the disk image: nothing is mounted.
type ext4 struct {
	disk   string
	offset int64
}

// rootFS finds the disk's one partition with sfdisk.
func rootFS(ctx context.Context, disk string) (ext4, error) {
	out, err := exec.CommandContext(ctx, "sfdisk", "--json", disk).Output()
	if err != nil {
		return ext4{}, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	var pt struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64 `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		return ext4{}, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	p := pt.PartitionTable
	if len(p.Partitions) != 1 {
		return ext4{}, fmt.Errorf("%s has %d partitions, want the root partition alone", disk, len(p.Partitions))
	}
	if p.SectorSize == 0 {
		p.SectorSize = 512
	}
	return ext4{disk: disk, offset: p.Partitions[0].Start * p.SectorSize}, nil
}

// spec is the file system as debugfs takes it: the image and the offset.
func (e ext4) spec() string { return fmt.Sprintf("%s?offset=%d", e.disk, e.offset) }

// debugfs runs one debugfs request. debugfs exits 0 even when the request
// fails, so its error output (without the version banner) is an error.
func (e ext4) debugfs(ctx context.Context, req string) (string, error) {
	cmd := exec.CommandContext(ctx, "debugfs", "-R", req, e.spec())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var msgs []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "debugfs ") {
			msgs = append(msgs, l)
		}
	}
	if err != nil || len(msgs) > 0 {
		return string(out), fmt.Errorf("debugfs -R '%s' %s: %v %s", req, e.spec(), err, strings.Join(msgs, "; "))
	}
	return string(out), nil
}

// An entry is one line of debugfs's ls -p: /INODE/MODE/UID/GID/NAME/SIZE/.
type entry struct {
	name string
	mode uint64 // with the file type bits
	size int64
}

func (e entry) dir() bool { return e.mode&0o170000 == 0o040000 }
func (e entry) reg() bool { return e.mode&0o170000 == 0o100000 }

// ls lists dir, without . and ..
func (e ext4) ls(ctx context.Context, dir string) ([]entry, error) {
	out, err := e.debugfs(ctx, "ls -p "+dir)
	if err != nil {
		return nil, err
	}
	var ents []entry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "/")
		if len(f) < 7 || f[0] != "" || f[5] == "." || f[5] == ".." {
			continue
		}
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil {
			return nil, fmt.Errorf("debugfs ls -p %s: %q: %w", dir, l, err)
		}
		size, _ := strconv.ParseInt(f[6], 10, 64) // empty for a directory
		ents = append(ents, entry{name: f[5], mode: mode, size: size})
	}
	return ents, nil
}

// copyOut copies the regular file src of the file system to dst on the host
// and checks that it has the size the directory says.
func (e ext4) copyOut(ctx context.Context, src string, want int64, dst string) error {
	os.Remove(dst) // debugfs dump does not truncate
	if _, err := e.debugfs(ctx, "dump "+src+" "+dst); err != nil {
		return err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return fmt.Errorf("debugfs dump %s: %w", src, err)
	}
	if st.Size() != want {
		return fmt.Errorf("debugfs dump %s: %d bytes, the directory says %d", src, st.Size(), want)
	}
	return nil
}

// copyDir copies the regular files of dir to the host directory dst and
// returns them.
func (e ext4) copyDir(ctx context.Context, dir, dst string) ([]entry, error) {
	ents, err := e.ls(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	var files []entry
	for _, f := range ents {
		if !f.reg() {
			continue
		}
		if err := e.copyOut(ctx, path.Join(dir, f.name), f.size, path.Join(dst, f.name)); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}
