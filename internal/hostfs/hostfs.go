// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package hostfs finds, on the machine that builds the capture image, the
// file system that holds a path: its mount, its block device, and the
// UUID= by which the capture kernel will find that device again. It is how
// a disk target without a device ("the file system /var/crash is on") is
// resolved at build time.
package hostfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ukdump/ukdump/internal/blkid"
)

// Opts say where to look; the zero value is this machine.
type Opts struct {
	// MountInfo is the mount table (default /proc/self/mountinfo).
	MountInfo string
	// Finder probes the block devices (its SysRoot also has dev/block).
	Finder blkid.Finder
}

// FS is the file system that holds a path.
type FS struct {
	// Path is the path asked for, and FSPath the same place relative to
	// the file system's root: what the capture kernel mounts and goes to.
	Path, FSPath string
	// MountPoint is where the file system is mounted here.
	MountPoint string
	// Device is its block device (e.g. /dev/vda1), FSType its type.
	Device, FSType string
	// Spec names the device for the capture kernel: UUID=…, else PARTUUID=….
	Spec string
}

func (f FS) String() string {
	return fmt.Sprintf("%s is %s on %s (%s, %s, mounted on %s)", f.Path, f.FSPath, f.Device, f.Spec, f.FSType, f.MountPoint)
}

// mount is one line of mountinfo.
type mount struct {
	major, minor int
	root, point  string
	fstype, src  string
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readMounts(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, w := range fields {
			if w == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		maj, min, ok := strings.Cut(fields[2], ":")
		if !ok {
			continue
		}
		m := mount{root: unescape(fields[3]), point: unescape(fields[4]), fstype: fields[sep+1], src: unescape(fields[sep+2])}
		m.major, _ = strconv.Atoi(maj)
		m.minor, _ = strconv.Atoi(min)
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// existing resolves the symlinks of the longest existing prefix of p (the
// dump directory may not exist yet) and appends the rest.
func existing(p string) string {
	rest := ""
	for cur := p; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		if cur == "/" || cur == "." {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// Resolve finds the file system that holds path.
func Resolve(path string, o Opts) (FS, error) {
	if o.MountInfo == "" {
		o.MountInfo = "/proc/self/mountinfo"
	}
	if !filepath.IsAbs(path) {
		return FS{}, fmt.Errorf("hostfs: %q is not an absolute path", path)
	}
	p := existing(filepath.Clean(path))
	ms, err := readMounts(o.MountInfo)
	if err != nil {
		return FS{}, fmt.Errorf("hostfs: reading the mount table: %w", err)
	}
	best := -1
	for i, m := range ms { // the longest mount point; of equal ones, the last (it covers the others)
		if within(p, m.point) && (best < 0 || len(m.point) >= len(ms[best].point)) {
			best = i
		}
	}
	if best < 0 {
		return FS{}, fmt.Errorf("hostfs: no file system in %s holds %s", o.MountInfo, path)
	}
	m := ms[best]
	rel := strings.TrimPrefix(strings.TrimPrefix(p, m.point), "/")
	r := FS{Path: path, FSPath: filepath.Join("/", m.root, rel), MountPoint: m.point, FSType: m.fstype}
	name, err := o.deviceName(m)
	if err != nil {
		return r, fmt.Errorf("hostfs: %s is on %s (%s from %q), which is not a block device the capture kernel can mount: give the target a device = \"UUID=…\" or a path on a disk (%v)", path, m.point, m.fstype, m.src, err)
	}
	devs, err := o.Finder.List()
	if err != nil {
		return r, fmt.Errorf("hostfs: %w", err)
	}
	for _, d := range devs {
		if d.Name != name {
			continue
		}
		r.Device = d.Path
		switch {
		case d.UUID != "":
			r.Spec = "UUID=" + d.UUID
		case d.PartUUID != "":
			r.Spec = "PARTUUID=" + d.PartUUID
		default:
			return r, fmt.Errorf("hostfs: %s is on %s (%s), whose file system has no UUID and whose partition has no PARTUUID: give the target a device", path, d.Path, m.fstype)
		}
		if r.FSType == "" {
			r.FSType = d.FSType
		}
		return r, nil
	}
	return r, fmt.Errorf("hostfs: %s is on block device %s, which the probe does not list (no node in /dev, or an unknown file system?)", path, name)
}

// deviceName is the kernel name of a mount's block device: from its
// device number in sysfs, else (btrfs reports an anonymous 0:N) from the
// /dev path it was mounted from.
func (o Opts) deviceName(m mount) (string, error) {
	sys := o.Finder.SysRoot
	if sys == "" {
		sys = "/sys"
	}
	link := filepath.Join(sys, "dev", "block", fmt.Sprintf("%d:%d", m.major, m.minor))
	if t, err := filepath.EvalSymlinks(link); err == nil && m.major != 0 {
		return filepath.Base(t), nil
	}
	dev := o.Finder.DevRoot
	if dev == "" {
		dev = "/dev"
	}
	if strings.HasPrefix(m.src, "/dev/") {
		src := filepath.Join(dev, strings.TrimPrefix(m.src, "/dev/"))
		if t, err := filepath.EvalSymlinks(src); err == nil {
			return filepath.Base(t), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("device %d:%d has no block device in %s", m.major, m.minor, filepath.Join(sys, "dev", "block"))
}

// MountOf finds where the block device dev (e.g. /dev/vda1) is mounted here
// and returns the directory that is fsPath of its file system; ok is false
// when it is not mounted (or fsPath is outside every mount of it).
func MountOf(dev, fsPath string, o Opts) (dir string, ok bool, err error) {
	if o.MountInfo == "" {
		o.MountInfo = "/proc/self/mountinfo"
	}
	ms, err := readMounts(o.MountInfo)
	if err != nil {
		return "", false, fmt.Errorf("hostfs: reading the mount table: %w", err)
	}
	name := filepath.Base(dev)
	if t, err := filepath.EvalSymlinks(dev); err == nil {
		name = filepath.Base(t)
	}
	for _, m := range ms {
		n, err := o.deviceName(m)
		if err != nil || n != name {
			continue
		}
		if within(fsPath, m.root) {
			rel := strings.TrimPrefix(strings.TrimPrefix(fsPath, m.root), "/")
			return filepath.Join(m.point, rel), true, nil
		}
	}
	return "", false, nil
}
