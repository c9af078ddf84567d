// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package hostfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/blkid"
)

const testUUID = "5d2b7c2e-9e3a-4c55-9d1f-0123456789ab"

// fakeHost is a machine with an ext4 vda1 mounted on /, a bind mount of its
// /srv/data on /data, and a tmpfs on /tmp.
func fakeHost(t *testing.T) Opts {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"sys/class/block/vda1", "sys/dev/block", "dev"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "sys/class/block/vda1/size"), []byte("16384\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sys/class/block/vda1/uevent"), []byte("MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\n"), 0o644)
	if err := os.Symlink("../../class/block/vda1", filepath.Join(dir, "sys/dev/block/254:1")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", testUUID, filepath.Join(dir, "dev/vda1"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 (install e2fsprogs: scripts/deps.sh): %v: %s", err, out)
	}
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte(strings.Join([]string{
		"22 30 0:21 / /proc rw,relatime - proc proc rw",
		"30 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw",
		"31 30 0:40 / /tmp rw - tmpfs tmpfs rw",
		`32 30 254:1 /srv/data /da\040ta rw - ext4 /dev/vda1 rw`,
	}, "\n")+"\n"), 0o644)
	return Opts{MountInfo: mi, Finder: blkid.Finder{SysRoot: filepath.Join(dir, "sys"), DevRoot: filepath.Join(dir, "dev")}}
}

func TestResolve(t *testing.T) {
	o := fakeHost(t)
	for _, tt := range []struct {
		path, fsPath, mountPoint string
	}{
		{"/var/crash", "/var/crash", "/"},
		{"/da ta/dumps", "/srv/data/dumps", "/da ta"},
		{"/", "/", "/"},
	} {
		got, err := Resolve(tt.path, o)
		if err != nil {
			t.Errorf("Resolve(%q) = %v", tt.path, err)
			continue
		}
		if got.FSPath != tt.fsPath || got.MountPoint != tt.mountPoint || got.Spec != "UUID="+testUUID || got.FSType != "ext4" || filepath.Base(got.Device) != "vda1" {
			t.Errorf("Resolve(%q) = %+v; want %s on %s, UUID=%s", tt.path, got, tt.fsPath, tt.mountPoint, testUUID)
		}
	}
	if _, err := Resolve("/tmp/crash", o); err == nil || !strings.Contains(err.Error(), "tmpfs") || !strings.Contains(err.Error(), "give the target a device") {
		t.Errorf("Resolve(/tmp/crash) = %v, want a tmpfs refusal saying what to do", err)
	}
	if _, err := Resolve("var/crash", o); err == nil {
		t.Errorf("Resolve(relative) = nil error")
	}
}

func TestMountOf(t *testing.T) {
	o := fakeHost(t)
	dev := filepath.Join(o.Finder.DevRoot, "vda1")
	for fsPath, want := range map[string]string{"/var/crash": "/var/crash", "/srv/data/x": "/srv/data/x"} {
		dir, ok, err := MountOf(dev, fsPath, o)
		if err != nil || !ok || dir != want {
			t.Errorf("MountOf(vda1, %s) = %q, %v, %v; want %q", fsPath, dir, ok, err, want)
		}
	}
	if _, ok, err := MountOf(filepath.Join(o.Finder.DevRoot, "vdb"), "/", o); ok || err != nil {
		t.Errorf("MountOf(an unmounted disk) = %v, %v; want not mounted", ok, err)
	}
}
