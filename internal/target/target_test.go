// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/dm"
	"github.com/ukdump/ukdump/internal/lvm"
)

func TestDumpDirName(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tt := range []struct {
		host  string
		crash time.Time
		want  string
	}{
		{"db1", time.Date(2024, 3, 9, 7, 5, 3, 999, time.UTC), "db1-20240309T070503Z"},
		{"web-2", time.Date(2024, 1, 1, 0, 30, 0, 0, cet), "web-2-20231231T233000Z"},
		{"ukdump", time.Unix(0, 0), "ukdump-19700101T000000Z"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			got := DumpDirName(tt.host, tt.crash)
			if got != tt.want {
				t.Errorf("DumpDirName(%q, %v) = %q, want %q", tt.host, tt.crash, got, tt.want)
			}
			if !dumpDirRE.MatchString(got) {
				t.Errorf("DumpDirName(%q, %v) = %q, which Prune does not take for a dump directory", tt.host, tt.crash, got)
			}
		})
	}
}

// mkdirs makes directories under a new temp dir and returns it.
func mkdirs(t *testing.T, names ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(root, n, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, n, "vmcore"), []byte("core"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func listDir(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPrune(t *testing.T) {
	// Names in no particular order: two hosts share the target, and for
	// each the crash time decides.
	dirs := []string{
		"web-20240102T000000Z",
		"db1-20240101T000000Z",
		"db1-20240103T120000Z",
		"db1-20240104T000000Z",
		"lost+found",
		"foo",
		"db1-2024",
		"db1-20240101T000000Z-notes",
		"db-1-20230101T000000Z", // another host, whose name starts like ours
	}
	for _, tt := range []struct {
		name        string
		dirs        []string
		r           Retention
		wantRemoved []string
	}{
		{"keep 0 keeps all", dirs, Retention{Host: "db1", Keep: 0}, nil},
		{"keep negative keeps all", dirs, Retention{Host: "db1", Keep: -1}, nil},
		{"keep 1 leaves the new one", dirs, Retention{Host: "db1", Keep: 1, Exclude: "db1-20240104T000000Z"},
			[]string{"db1-20240101T000000Z", "db1-20240103T120000Z"}},
		{"keep 2: the new one and the newest", dirs, Retention{Host: "db1", Keep: 2, Exclude: "db1-20240104T000000Z"},
			[]string{"db1-20240101T000000Z"}},
		{"keep 3 removes none", dirs, Retention{Host: "db1", Keep: 3, Exclude: "db1-20240104T000000Z"}, nil},
		{"without a new dump", dirs, Retention{Host: "db1", Keep: 1},
			[]string{"db1-20240101T000000Z", "db1-20240103T120000Z"}},
		{"the other host's", dirs, Retention{Host: "web", Keep: 1, Exclude: "web-20240105T000000Z"},
			[]string{"web-20240102T000000Z"}},
		{"a host with a dash", dirs, Retention{Host: "db-1", Keep: 1}, nil},
		{"no dumps of ours", dirs, Retention{Host: "mail", Keep: 1}, nil},
		{"empty", nil, Retention{Host: "db1", Keep: 1}, nil},
		{
			"duplicates after their base",
			[]string{"h-20240101T000000Z.2", "h-20240101T000000Z", "h-20240101T000000Z.1", "h-20240101T000000Z.10", "h-20231231T000000Z", "h-20240102T000000Z"},
			Retention{Host: "h", Keep: 1},
			[]string{"h-20231231T000000Z", "h-20240101T000000Z", "h-20240101T000000Z.1", "h-20240101T000000Z.2", "h-20240101T000000Z.10"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := mkdirs(t, tt.dirs...)
			// A regular file with a dump-like name is not a dump directory.
			if err := os.WriteFile(filepath.Join(root, "db1-20000101T000000Z"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			removed, err := Prune(LocalDir(root), tt.r)
			if err != nil {
				t.Fatalf("Prune(%s, %+v) = %v", root, tt.r, err)
			}
			if diff := cmp.Diff(tt.wantRemoved, removed); diff != "" {
				t.Errorf("Prune(%+v) removed (-want, +got):\n%s", tt.r, diff)
			}
			var want []string
			for _, d := range append(slices.Clone(tt.dirs), "db1-20000101T000000Z") {
				if !slices.Contains(tt.wantRemoved, d) {
					want = append(want, d)
				}
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, listDir(t, root)); diff != "" {
				t.Errorf("after Prune(%+v), directory (-want, +got):\n%s", tt.r, diff)
			}
		})
	}
}

// freeDir is a local Dir whose free space grows by 1 for each removal.
type freeDir struct {
	Dir
	free *int64
}

func (d freeDir) Free() (int64, error) { return *d.free, nil }
func (d freeDir) RemoveAll(name string) error {
	*d.free++
	return d.Dir.RemoveAll(name)
}

func TestMakeRoom(t *testing.T) {
	root := mkdirs(t, "h-20240101T000000Z", "h-20240102T000000Z", "h-20240103T000000Z", "other-20200101T000000Z")
	free := int64(0)
	d := freeDir{LocalDir(root), &free}
	removed, got, err := MakeRoom(d, Retention{Host: "h"}, 2)
	if err != nil || got != 2 || !slices.Equal(removed, []string{"h-20240101T000000Z", "h-20240102T000000Z"}) {
		t.Errorf("MakeRoom(need 2) = %q, %d, %v; want the two oldest of h removed", removed, got, err)
	}
	removed, got, err = MakeRoom(d, Retention{Host: "h"}, 10)
	if err != nil || got != 3 || !slices.Equal(removed, []string{"h-20240103T000000Z"}) {
		t.Errorf("MakeRoom(need 10) = %q, %d, %v; want the last of h removed, and no other host's", removed, got, err)
	}
	if diff := cmp.Diff([]string{"other-20200101T000000Z"}, listDir(t, root)); diff != "" {
		t.Errorf("after MakeRoom (-want, +got):\n%s", diff)
	}
}

// failDir is a Dir whose RemoveAll fails.
type failDir struct{ Dir }

func (failDir) RemoveAll(string) error { return errors.New("read-only file system") }

func TestPruneErrors(t *testing.T) {
	root := mkdirs(t, "h-20240101T000000Z", "h-20240102T000000Z")
	removed, err := Prune(failDir{LocalDir(root)}, Retention{Host: "h", Keep: 1})
	if err == nil || !strings.Contains(err.Error(), "retention: remove h-20240101T000000Z") || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("Prune(failing dir, 1) = %q, %v, want a retention: remove error", removed, err)
	}
	gone := filepath.Join(t.TempDir(), "gone")
	if removed, err := Prune(LocalDir(gone), Retention{Host: "h", Keep: 1}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prune(%s, 1) = %q, %v, want %v", gone, removed, err, fs.ErrNotExist)
	}
}

func TestLocalDirBadNames(t *testing.T) {
	root := t.TempDir()
	d := LocalDir(root)
	for _, name := range []string{"..", "../x", "a/../../b", "/etc", filepath.Join(root, "x")} {
		t.Run(name, func(t *testing.T) {
			if err := d.Mkdir(name); err == nil {
				t.Errorf("Mkdir(%q) = nil, want error", name)
			}
			if f, err := d.Create(name); err == nil {
				f.Close()
				t.Errorf("Create(%q) = nil error, want error", name)
			}
			if err := d.Rename(name, "ok"); err == nil {
				t.Errorf("Rename(%q, ok) = nil, want error", name)
			}
			if err := d.Rename("ok", name); err == nil {
				t.Errorf("Rename(ok, %q) = nil, want error", name)
			}
			if err := d.SyncDir(name); err == nil {
				t.Errorf("SyncDir(%q) = nil, want error", name)
			}
			if err := d.RemoveAll(name); err == nil {
				t.Errorf("RemoveAll(%q) = nil, want error", name)
			}
		})
	}
	if err := d.RemoveAll(""); err == nil || !strings.Contains(err.Error(), "refusing to remove the target's top directory") {
		t.Errorf("RemoveAll(\"\") = %v, want it refused", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("after RemoveAll(\"\"): %v", err)
	}
}

// withUmask runs f with the process umask set to mask. Tests that call it
// must not run in parallel.
func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

func TestLocalDirModes(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o077, 0o777} {
		t.Run(fmt.Sprintf("umask %#o", mask), func(t *testing.T) {
			root := t.TempDir()
			d := LocalDir(root)
			var mkErr, createErr error
			withUmask(mask, func() {
				mkErr = d.Mkdir("dump")
				if mkErr != nil {
					return
				}
				var f File
				if f, createErr = d.Create("dump/vmcore"); createErr == nil {
					if _, err := f.Write([]byte("core")); err != nil {
						createErr = err
					}
					if err := f.Close(); err != nil && createErr == nil {
						createErr = err
					}
				}
			})
			if mkErr != nil {
				t.Fatalf("Mkdir(dump) = %v", mkErr)
			}
			fi, err := os.Stat(filepath.Join(root, "dump"))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode(); got != fs.ModeDir|0o700 {
				t.Errorf("Mkdir(dump) with umask %#o: mode %v, want %v", mask, got, fs.ModeDir|0o700)
			}
			if mask&0o600 != 0 {
				return // Create does not widen what the umask takes away
			}
			if createErr != nil {
				t.Fatalf("Create(dump/vmcore) = %v", createErr)
			}
			fi, err = os.Stat(filepath.Join(root, "dump", "vmcore"))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode(); got != 0o600 {
				t.Errorf("Create(dump/vmcore) with umask %#o: mode %v, want %v", mask, got, fs.FileMode(0o600))
			}
		})
	}
}

func TestLocalDirOps(t *testing.T) {
	root := t.TempDir()
	d := LocalDir(root)
	if got := d.String(); got != root {
		t.Errorf("LocalDir(%s).String() = %q, want %q", root, got, root)
	}
	if err := d.Mkdir("a"); err != nil {
		t.Fatalf("Mkdir(a) = %v", err)
	}
	if err := d.Mkdir("a"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir(a) again = %v, want %v", err, fs.ErrExist)
	}
	f, err := d.Create("a/vmcore.tmp")
	if err != nil {
		t.Fatalf("Create(a/vmcore.tmp) = %v", err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("Sync() = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename("a/vmcore.tmp", "a/vmcore"); err != nil {
		t.Fatalf("Rename = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a", "vmcore")); err != nil || string(b) != "data" {
		t.Errorf("after Rename, a/vmcore = %q, %v, want data", b, err)
	}
	for _, n := range []string{"a", ""} {
		if err := d.SyncDir(n); err != nil {
			t.Errorf("SyncDir(%q) = %v", n, err)
		}
	}
	if err := d.SyncDir("nosuch"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(nosuch) = %v, want %v", err, fs.ErrNotExist)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Mkdir("b"); err != nil {
		t.Fatal(err)
	}
	names, err := d.List()
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" {
		t.Errorf("List() (-want, +got):\n%s", diff)
	}
	if err := d.RemoveAll("a"); err != nil {
		t.Errorf("RemoveAll(a) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveAll(a), Stat = %v, want %v", err, fs.ErrNotExist)
	}
	free, err := d.Free()
	if err != nil || free <= 0 {
		t.Errorf("Free() = %d, %v, want > 0", free, err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := LocalDir(filepath.Join(root, "nosuch")).Free(); err == nil {
		t.Errorf("Free() of a missing directory = nil error, want error")
	}
}

// fakeDisks is a sysfs and /dev under a temp dir with whole disks whose
// device files hold the given images, like internal/blkid's tests build.
func fakeDisks(t *testing.T, disks map[string][]byte) blkid.Finder {
	t.Helper()
	root := t.TempDir()
	f := blkid.Finder{SysRoot: filepath.Join(root, "sys"), DevRoot: filepath.Join(root, "dev")}
	for _, d := range []string{filepath.Join(f.SysRoot, "class", "block"), f.DevRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, img := range disks {
		rel := filepath.Join("devices", "virtual", "block", name)
		dir := filepath.Join(f.SysRoot, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"uevent": fmt.Sprintf("MAJOR=253\nMINOR=16\nDEVNAME=%s\nDEVTYPE=disk\n", name),
			"size":   fmt.Sprintf("%d\n", len(img)/512),
		}
		for n, s := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(f.DevRoot, name), img, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", rel), filepath.Join(f.SysRoot, "class", "block", name)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// ext4Image returns an 8 MiB ext4 file system labelled label, made by mkfs.ext4.
func ext4Image(t *testing.T, label string) []byte {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		mkfs = "/usr/sbin/mkfs.ext4"
	}
	if _, err := os.Stat(mkfs); err != nil {
		t.Fatalf("mkfs.ext4 not found (install e2fsprogs): %v", err)
	}
	p := filepath.Join(t.TempDir(), "ext4.img")
	if out, err := exec.Command(mkfs, "-q", "-F", "-L", label, p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("%s -q -F -L %s %s 8M: %v\n%s", mkfs, label, p, err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type mountCall struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

type unmountCall struct {
	Target string
	Flags  int
}

// recorder records Mount and Unmount calls and returns mountErr from Mount.
type recorder struct {
	mounts   []mountCall
	unmounts []unmountCall
	mountErr error
}

func (r *recorder) disk(f blkid.Finder, mnt string) *Disk {
	return &Disk{
		Spec:       "LABEL=crashdump",
		Path:       "/var/crash",
		Wait:       5 * time.Second,
		MountPoint: mnt,
		Finder:     f,
		Mount: func(source, target, fstype string, flags uintptr, data string) error {
			r.mounts = append(r.mounts, mountCall{source, target, fstype, flags, data})
			return r.mountErr
		},
		Unmount: func(target string, flags int) error {
			r.unmounts = append(r.unmounts, unmountCall{target, flags})
			return nil
		},
	}
}

func TestDiskOpen(t *testing.T) {
	f := fakeDisks(t, map[string][]byte{"vdb": ext4Image(t, "crashdump"), "vda": make([]byte, 4096)})
	dev := filepath.Join(f.DevRoot, "vdb")
	for _, tt := range []struct {
		name      string
		edit      func(d *Disk)
		wantMount mountCall // Target is filled in
	}{
		{"by label", nil, mountCall{Source: dev, FSType: "ext4"}},
		{"by path", func(d *Disk) { d.Spec = "/dev/vdb" }, mountCall{Source: dev, FSType: "ext4"}},
		{"fstype and options", func(d *Disk) { d.FSType = "ext2"; d.Options = "errors=remount-ro" }, mountCall{Source: dev, FSType: "ext2", Data: "errors=remount-ro"}},
		{"root path", func(d *Disk) { d.Path = "/" }, mountCall{Source: dev, FSType: "ext4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			var logs []string
			mnt := filepath.Join(t.TempDir(), "mnt", "target")
			d := r.disk(f, mnt)
			d.Logf = func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
			if tt.edit != nil {
				tt.edit(d)
			}
			dir, err := d.Open(context.Background())
			if err != nil {
				t.Fatalf("%v.Open() = %v", d, err)
			}
			want := tt.wantMount
			want.Target = mnt
			if diff := cmp.Diff([]mountCall{want}, r.mounts); diff != "" {
				t.Errorf("%v.Open() mounts (-want, +got):\n%s", d, diff)
			}
			if fi, err := os.Stat(filepath.Join(mnt, d.Path)); err != nil || !fi.IsDir() {
				t.Errorf("%v.Open() did not make %s: %v", d, d.Path, err)
			}
			if got, want := dir.String(), dev+":"+d.Path; got != want {
				t.Errorf("%v.Open().String() = %q, want %q", d, got, want)
			}
			if len(logs) != 1 || !strings.Contains(logs[0], "found "+dev) {
				t.Errorf("%v.Open() logged %q, want one line about finding %s", d, logs, dev)
			}
			// The Dir writes under the mount point and path.
			if err := dir.Mkdir("h-20240101T000000Z"); err != nil {
				t.Errorf("Mkdir on the opened disk = %v", err)
			}
			if _, err := os.Stat(filepath.Join(mnt, d.Path, "h-20240101T000000Z")); err != nil {
				t.Errorf("Mkdir on the opened disk made no directory under %s: %v", filepath.Join(mnt, d.Path), err)
			}
			if len(r.unmounts) != 0 {
				t.Errorf("%v.Open() unmounted %v before Close", d, r.unmounts)
			}
			if err := dir.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if diff := cmp.Diff([]unmountCall{{mnt, 0}}, r.unmounts); diff != "" {
				t.Errorf("Close() unmounts (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestDiskOpenErrors(t *testing.T) {
	f := fakeDisks(t, map[string][]byte{"vdb": ext4Image(t, "crashdump"), "vdc": make([]byte, 8192)})
	for _, tt := range []struct {
		name       string
		edit       func(d *Disk, r *recorder)
		want       []string
		wantIs     []error
		wantMounts int
	}{
		{
			name:       "mount fails",
			edit:       func(d *Disk, r *recorder) { r.mountErr = syscall.ENODEV },
			want:       []string{"mount " + filepath.Join(f.DevRoot, "vdb"), "type ext4", "is the ext4 module in the image?"},
			wantIs:     []error{syscall.ENODEV},
			wantMounts: 1,
		},
		{
			name:       "mount fails on I/O",
			edit:       func(d *Disk, r *recorder) { r.mountErr = syscall.EIO },
			want:       []string{"mount " + filepath.Join(f.DevRoot, "vdb"), "input/output error", "the disk failed I/O", "messages above"},
			wantIs:     []error{syscall.EIO},
			wantMounts: 1,
		},
		{
			name:   "device never appears",
			edit:   func(d *Disk, r *recorder) { d.Spec = "LABEL=nosuch"; d.Wait = 100 * time.Millisecond },
			want:   []string{`LABEL="nosuch"`, "after waiting", "--module"},
			wantIs: []error{blkid.ErrNotFound, context.DeadlineExceeded},
		},
		{
			name: "no file system",
			edit: func(d *Disk, r *recorder) { d.Spec = "/dev/vdc" },
			want: []string{"has no file system we recognise", "mkfs.ext4 -L crashdump"},
		},
		{
			name: "bad spec",
			edit: func(d *Disk, r *recorder) { d.Spec = "FOO=bar" },
			want: []string{`unknown kind "FOO"`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			d := r.disk(f, filepath.Join(t.TempDir(), "mnt"))
			tt.edit(d, &r)
			dir, err := d.Open(context.Background())
			if err == nil {
				dir.Close()
				t.Fatalf("%v.Open() = %v, nil, want error", d, dir)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v.Open() = %q, want it to contain %q", d, err, w)
				}
			}
			for _, w := range tt.wantIs {
				if !errors.Is(err, w) {
					t.Errorf("%v.Open() = %v, want errors.Is %v", d, err, w)
				}
			}
			if len(r.mounts) != tt.wantMounts || len(r.unmounts) != 0 {
				t.Errorf("%v.Open() mounted %v, unmounted %v; want %d mounts, no unmounts", d, r.mounts, r.unmounts, tt.wantMounts)
			}
		})
	}
}

// A mount that never returns (a disk that stopped answering) ends the
// target's turn after MountWait, or when the capture's context ends.
func TestDiskOpenMountHangs(t *testing.T) {
	f := fakeDisks(t, map[string][]byte{"vdb": ext4Image(t, "crashdump")})
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		cancel bool
		want   []string
	}{
		{name: "mount wait", wait: 50 * time.Millisecond, want: []string{"mount did not return after 50ms", "not answering", "later target"}},
		{name: "capture deadline", wait: time.Hour, cancel: true, want: []string{"mount did not return: ", "capture deadline"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			d := r.disk(f, filepath.Join(t.TempDir(), "mnt"))
			d.MountWait = tt.wait
			hung := make(chan struct{})
			defer close(hung)
			d.Mount = func(string, string, string, uintptr, string) error { <-hung; return nil }
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("capture deadline")) })
			}
			start := time.Now()
			dir, err := d.Open(ctx)
			if err == nil {
				dir.Close()
				t.Fatalf("%v.Open() = %v, nil, want error", d, dir)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("%v.Open() returned after %v, want soon after 50ms", d, el)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v.Open() = %q, want it to contain %q", d, err, w)
				}
			}
			if !errors.Is(err, errMountHung) {
				t.Errorf("%v.Open() = %v, want errors.Is errMountHung", d, err)
			}
		})
	}
}

func TestParseDumpDirName(t *testing.T) {
	crash := time.Date(2026, 12, 1, 22, 10, 5, 0, time.UTC)
	for name, want := range map[string]string{"web-1-20261201T221005Z": "web-1", "web-1-20261201T221005Z.2": "web-1"} {
		host, tm, ok := ParseDumpDirName(name)
		if !ok || host != want || !tm.Equal(crash) {
			t.Errorf("ParseDumpDirName(%q) = %q, %v, %v; want %q, %v", name, host, tm, ok, want, crash)
		}
	}
	if _, _, ok := ParseDumpDirName("lost+found"); ok {
		t.Errorf("ParseDumpDirName(lost+found) ok")
	}
	if got := DumpDirName("web-1", crash); got != "web-1-20261201T221005Z" {
		t.Errorf("DumpDirName = %q", got)
	}
}

// TestDiskOpenLVM: a spec that no block device has but an LVM logical
// volume does is mounted from the device LVM makes; LVM's final errors
// end the wait at once, the others are reported when it times out.
func TestDiskOpenLVM(t *testing.T) {
	f := fakeDisks(t, map[string][]byte{"nvme0n1p2": make([]byte, 8192)}) // a PV: no file system
	lv := filepath.Join(f.DevRoot, "mapper", "vg0-crash")
	if err := os.MkdirAll(filepath.Dir(lv), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lv, ext4Image(t, "crashdump"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := &lvm.Plan{VG: &lvm.VG{Name: "vg0"}, LV: &lvm.LV{Name: "crash"}, Sectors: 2048,
		Targets: []dm.Target{{Start: 0, Length: 2048, Type: "linear", Params: "259:2 2048"}}}
	for _, spec := range []string{"LABEL=crashdump", "/dev/mapper/vg0-crash", "/dev/vg0/crash"} {
		var r recorder
		var logs, asked []string
		d := r.disk(f, filepath.Join(t.TempDir(), "mnt"))
		d.Spec = spec
		d.Logf = func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
		calls := 0
		d.LVM = func(spec string) (string, *lvm.Plan, error) {
			asked = append(asked, spec)
			if calls++; calls < 3 { // the PV appears late
				return "", nil, fmt.Errorf("VG vg0: PV pv0 missing: %w", lvm.ErrMissingPV)
			}
			return lv, plan, nil
		}
		dir, err := d.Open(context.Background())
		if err != nil {
			t.Fatalf("Open(%s) = %v", spec, err)
		}
		dir.Close()
		if len(r.mounts) != 1 || r.mounts[0].Source != lv || r.mounts[0].FSType != "ext4" {
			t.Errorf("Open(%s) mounted %v, want %s (ext4)", spec, r.mounts, lv)
		}
		if len(asked) != 3 || asked[0] != spec {
			t.Errorf("Open(%s) asked LVM for %q, want %s three times", spec, asked, spec)
		}
		if all := strings.Join(logs, "\n"); !strings.Contains(all, "LVM: vg0/crash (linear, 1 segments, 2048 sectors) is "+lv) || !strings.Contains(all, "found "+lv) {
			t.Errorf("Open(%s) logged %q, want the LV and its device", spec, logs)
		}
	}

	// A PARTUUID or a plain partition is never an LV.
	var r recorder
	d := r.disk(f, filepath.Join(t.TempDir(), "mnt"))
	d.Spec, d.Wait = "/dev/sdb1", 60*time.Millisecond
	d.LVM = func(spec string) (string, *lvm.Plan, error) {
		t.Errorf("LVM asked for %s", spec)
		return "", nil, lvm.ErrNotFound
	}
	if _, err := d.Open(context.Background()); !errors.Is(err, blkid.ErrNotFound) || strings.Contains(err.Error(), "LVM") {
		t.Errorf("Open(/dev/sdb1) = %v, want not found, without LVM", err)
	}

	for _, tt := range []struct {
		name   string
		lvmErr error
		wait   time.Duration
		want   []string
		is     []error
	}{
		{"unsupported: at once", fmt.Errorf("VG vg0: LV crash is of type thin (thin provisioning): %w", lvm.ErrUnsupported), time.Hour,
			[]string{"disk LABEL=crashdump path /var/crash: VG vg0: LV crash is of type thin"}, []error{lvm.ErrUnsupported}},
		{"missing PV: after the wait", fmt.Errorf("VG vg0: PV pv1 missing: LV crash cannot be assembled: %w", lvm.ErrMissingPV), 100 * time.Millisecond,
			[]string{`LABEL="crashdump"`, "after waiting", "--module", "LVM: VG vg0: PV pv1 missing: LV crash cannot be assembled"},
			[]error{blkid.ErrNotFound, lvm.ErrMissingPV, context.DeadlineExceeded}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			d := r.disk(f, filepath.Join(t.TempDir(), "mnt"))
			d.Wait = tt.wait
			d.LVM = func(string) (string, *lvm.Plan, error) { return "", nil, tt.lvmErr }
			_, err := d.Open(context.Background())
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Open() = %v, want it to contain %q", err, w)
				}
			}
			for _, w := range tt.is {
				if !errors.Is(err, w) {
					t.Errorf("Open() = %v, want errors.Is %v", err, w)
				}
			}
			if len(r.mounts) != 0 {
				t.Errorf("Open() mounted %v", r.mounts)
			}
		})
	}
}
