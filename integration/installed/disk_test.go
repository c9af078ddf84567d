// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build e2e

package installed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/internal/lvm"
)

// An ext4 is the guest's root file system, read on the host with debugfs at
// the root partition's offset in the disk image: nothing is mounted.
type ext4 struct {
	disk   string
	offset int64
}

// rootFS finds the disk's one partition with sfdisk.
func rootFS(ctx context.Context, disk string) (ext4, error) {
	parts, err := partitions(ctx, disk)
	if err != nil {
		return ext4{}, err
	}
	if len(parts) != 1 {
		return ext4{}, fmt.Errorf("%s has %d partitions, want the root partition alone", disk, len(parts))
	}
	return ext4{disk: disk, offset: parts[0].offset}, nil
}

// A part is a partition of a disk image, in bytes.
type part struct{ offset, size int64 }

// partitions lists the partitions of a disk image with sfdisk.
func partitions(ctx context.Context, disk string) ([]part, error) {
	out, err := exec.CommandContext(ctx, "sfdisk", "--json", disk).Output()
	if err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	var pt struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64 `json:"start"`
				Size  int64 `json:"size"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	p := pt.PartitionTable
	if p.SectorSize == 0 {
		p.SectorSize = 512
	}
	var parts []part
	for _, x := range p.Partitions {
		parts = append(parts, part{x.Start * p.SectorSize, x.Size * p.SectorSize})
	}
	return parts, nil
}

// lvFS finds the logical volume lv of the volume group vg that the guest
// made on the disk's one partition, with ukdump's own LVM reader (this
// host's kernel has no device-mapper), and reads its file system through
// a loop mount at the LV's place in the image: the LV must be linear, in
// one segment.
func lvFS(ctx context.Context, disk, vg, lv, fstype string) (loopFS, error) {
	parts, err := partitions(ctx, disk)
	if err != nil {
		return loopFS{}, err
	}
	if len(parts) != 1 {
		return loopFS{}, fmt.Errorf("%s has %d partitions, want the PV's alone", disk, len(parts))
	}
	f, err := os.Open(disk)
	if err != nil {
		return loopFS{}, err
	}
	defer f.Close()
	pv := lvm.Device{Name: "pv", R: io.NewSectionReader(f, parts[0].offset, parts[0].size), Size: parts[0].size, Major: 259, Minor: 1}
	vgs, problems := lvm.Scan([]lvm.Device{pv})
	if len(problems) > 0 {
		return loopFS{}, fmt.Errorf("LVM on %s: %v", disk, problems)
	}
	p, err := lvm.Find(vgs, "/dev/"+vg+"/"+lv, nil)
	if err != nil {
		return loopFS{}, fmt.Errorf("LVM on %s: %w", disk, err)
	}
	if len(p.Targets) != 1 || p.Targets[0].Type != "linear" {
		return loopFS{}, fmt.Errorf("LV %s/%s on %s: table %v, want one linear target", vg, lv, disk, p.Targets)
	}
	var sector int64
	if _, err := fmt.Sscanf(p.Targets[0].Params, "259:1 %d", &sector); err != nil {
		return loopFS{}, fmt.Errorf("LV %s/%s on %s: linear target %q: %w", vg, lv, disk, p.Targets[0].Params, err)
	}
	return loopFS{disk: disk, offset: parts[0].offset + sector*512, limit: int64(p.Sectors) * 512, fstype: fstype}, nil
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

// A dumpFS is a file system of a guest disk that the host reads the dump
// from.
type dumpFS interface {
	ls(ctx context.Context, dir string) ([]entry, error)
	copyDir(ctx context.Context, dir, dst string) ([]entry, error)
}

// A loopFS is a file system in a disk image that debugfs cannot read (XFS,
// btrfs), read on the host through a read-only loop mount at an offset.
// Each call mounts it in a mount namespace of its own (unshare -m), which
// takes the mount away when the call ends: nothing stays mounted, whatever
// happens to the test.
type loopFS struct {
	disk          string
	offset, limit int64 // bytes; limit 0: to the end
	fstype        string
}

// run mounts the file system read-only on a temporary directory and runs
// script there with sh, the mount point in $m.
func (l loopFS) run(ctx context.Context, script string, args ...string) (string, error) {
	mnt, err := os.MkdirTemp("", "ukdump-e2e-mnt-")
	if err != nil {
		return "", err
	}
	defer os.Remove(mnt)
	opts := fmt.Sprintf("loop,ro,offset=%d", l.offset)
	if l.limit > 0 {
		opts += fmt.Sprintf(",sizelimit=%d", l.limit)
	}
	if l.fstype == "xfs" {
		opts += ",norecovery" // a read-only look: never replay a log on the test's copy
	}
	sh := `set -e; m=$1; shift; mount -t "$FSTYPE" -o "$OPTS" "$DISK" "$m"; ` + script
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", sh, "sh", mnt}, args...)...)
	cmd.Env = append(os.Environ(), "FSTYPE="+l.fstype, "OPTS="+opts, "DISK="+l.disk)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("mount -t %s -o %s %s: %s: %w: %s", l.fstype, opts, l.disk, script, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (l loopFS) ls(ctx context.Context, dir string) ([]entry, error) {
	out, err := l.run(ctx, `find "$m/$1" -mindepth 1 -maxdepth 1 -printf '%m %y %s %f\n'`, dir)
	if err != nil {
		return nil, err
	}
	var ents []entry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			continue
		}
		mode, err1 := strconv.ParseUint(f[0], 8, 32)
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("find %s: %q", dir, line)
		}
		switch f[1] {
		case "d":
			mode |= 0o040000
		case "f":
			mode |= 0o100000
		}
		ents = append(ents, entry{name: f[3], mode: mode, size: size})
	}
	return ents, nil
}

func (l loopFS) copyDir(ctx context.Context, dir, dst string) ([]entry, error) {
	ents, err := l.ls(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	if _, err := l.run(ctx, `find "$m/$1" -mindepth 1 -maxdepth 1 -type f -exec cp -t "$2" {} +`, dir, dst); err != nil {
		return nil, err
	}
	var files []entry
	for _, f := range ents {
		if !f.reg() {
			continue
		}
		st, err := os.Stat(path.Join(dst, f.name))
		if err != nil || st.Size() != f.size {
			return nil, fmt.Errorf("copy of %s/%s: %v (size %v, want %d)", dir, f.name, err, st, f.size)
		}
		files = append(files, f)
	}
	return files, nil
}
