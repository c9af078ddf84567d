// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/ukdump/ukdump/internal/layout"
)

// testOpts returns Opts for a fake busybox and fakeModulesDir.
func testOpts(t *testing.T) Opts {
	t.Helper()
	dir := fakeModulesDir(t)
	bb := filepath.Join(t.TempDir(), "bb")
	// Compressible, so compressed sizes are clearly smaller.
	if err := os.WriteFile(bb, bytes.Repeat([]byte("\x7fELF busybox "), 4096), 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, []byte("PRIVATE KEY"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Opts{
		Busybox:    bb,
		Commands:   []string{"ukdump", "ls"},
		ConfigTOML: []byte("[target]\nurl = \"file:///var/crash\"\n"),
		Files: []File{
			{Src: key, Dst: "/etc/ukdump/ssh/id_ed25519"},
			{Data: []byte("host ssh-ed25519 AAAA\n"), Dst: "etc/ukdump/known_hosts", Mode: 0o644},
		},
		KernelVersion:   filepath.Base(dir),
		ModulesDir:      dir,
		Modules:         []string{"virtio_pci", "virtio_blk"},
		OptionalModules: []string{"ext4", "no_such_module"},
		MTime:           1700000000,
	}
}

// decompress undoes c (Uncompressed finds it from the magic).
func decompress(t *testing.T, data []byte, c Compression) []byte {
	t.Helper()
	r, err := Uncompressed(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decompressing %s: %v", c, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", c, err)
	}
	return b
}

// readRecords returns the records of a newc archive and their names in order.
func readRecords(t *testing.T, archive []byte) (map[string]cpio.Record, []string) {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatalf("reading cpio: %v", err)
	}
	m := map[string]cpio.Record{}
	var names []string
	for _, r := range recs {
		m[r.Name] = r
		names = append(names, r.Name)
	}
	return m, names
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatalf("reading %s: %v", r.Name, err)
	}
	return string(b)
}

func TestBuild(t *testing.T) {
	for _, c := range []Compression{"", Gzip, Zstd, XZ, None} {
		t.Run(string(c), func(t *testing.T) {
			o := testOpts(t)
			o.Compression = c
			var buf bytes.Buffer
			res, err := Build(&buf, o)
			if err != nil {
				t.Fatalf("Build(%+v) = %v", o, err)
			}
			if c == "" {
				c = Gzip
			}
			archive := decompress(t, buf.Bytes(), c)
			if res.Size != int64(buf.Len()) || res.UncompressedSize != int64(len(archive)) {
				t.Errorf("Build() sizes = %d, %d; want %d, %d", res.Size, res.UncompressedSize, buf.Len(), len(archive))
			}
			if c != None && res.Size*4 > res.UncompressedSize {
				t.Errorf("Build() size = %d, uncompressed %d; want 4x smaller", res.Size, res.UncompressedSize)
			}
			wantMods := []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk", "crc32c_generic", "jbd2", "mbcache", "ext4"}
			if diff := cmp.Diff(wantMods, res.Modules); diff != "" {
				t.Errorf("Build() modules (-want +got):\n%s", diff)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `"no_such_module"`) {
				t.Errorf("Build() warnings = %q, want one for no_such_module", res.Warnings)
			}

			recs, names := readRecords(t, archive)
			for i, n := range names {
				r := recs[n]
				if r.MTime != 1700000000 || r.UID != 0 || r.GID != 0 || r.Ino != uint64(i+1) {
					t.Errorf("record %s = %v; want mtime 1700000000, uid/gid 0, ino %d", n, r.Info, i+1)
				}
				if i > 0 && names[i-1] >= n {
					t.Errorf("records %s, %s not sorted", names[i-1], n)
				}
				if d := filepath.Dir(n); d != "." && recs[d].Mode&cpio.S_IFMT != cpio.S_IFDIR {
					t.Errorf("record %s: parent %s is not a directory record", n, d)
				}
			}
			kdir := "lib/modules/" + o.KernelVersion + "/"
			for _, tt := range []struct {
				name, target string // target: symlink target, or content of a regular file
				mode         uint64
				rdev         [2]uint64
			}{
				{name: "init", target: "bbin/capture", mode: cpio.S_IFLNK | 0o777},
				{name: "bin", target: "bbin", mode: cpio.S_IFLNK | 0o777},
				{name: "bbin/bb", target: strings.Repeat("\x7fELF busybox ", 4096), mode: cpio.S_IFREG | 0o755},
				{name: "bbin/capture", target: "bb", mode: cpio.S_IFLNK | 0o777},
				{name: "bbin/ukdump", target: "bb", mode: cpio.S_IFLNK | 0o777},
				{name: "bbin/ls", target: "bb", mode: cpio.S_IFLNK | 0o777},
				{name: "dev/console", mode: cpio.S_IFCHR | 0o600, rdev: [2]uint64{5, 1}},
				{name: "dev/null", mode: cpio.S_IFCHR | 0o666, rdev: [2]uint64{1, 3}},
				{name: "dev/kmsg", mode: cpio.S_IFCHR | 0o644, rdev: [2]uint64{1, 11}},
				{name: "dev/tty", mode: cpio.S_IFCHR | 0o666, rdev: [2]uint64{5, 0}},
				{name: "proc", mode: cpio.S_IFDIR | 0o755},
				{name: "sys", mode: cpio.S_IFDIR | 0o755},
				{name: "tmp", mode: cpio.S_IFDIR | 0o755},
				{name: "mnt", mode: cpio.S_IFDIR | 0o755},
				{name: "var", mode: cpio.S_IFDIR | 0o755},
				{name: "etc/ukdump", mode: cpio.S_IFDIR | 0o700},
				{name: "etc/ukdump/ukdump.toml", target: string(o.ConfigTOML), mode: cpio.S_IFREG | 0o600},
				{name: "etc/ukdump/ssh", mode: cpio.S_IFDIR | 0o755},
				{name: "etc/ukdump/ssh/id_ed25519", target: "PRIVATE KEY", mode: cpio.S_IFREG | 0o600},
				{name: "etc/ukdump/known_hosts", target: "host ssh-ed25519 AAAA\n", mode: cpio.S_IFREG | 0o644},
				{name: kdir[:len(kdir)-1], mode: cpio.S_IFDIR | 0o755},
				{name: kdir + "kernel/drivers/block/virtio_blk.ko.xz", target: "kernel/drivers/block/virtio_blk.ko.xz", mode: cpio.S_IFREG | 0o644},
				{name: kdir + "kernel/crypto/crc32c_generic.ko", target: "kernel/crypto/crc32c_generic.ko", mode: cpio.S_IFREG | 0o644},
				{name: "etc/ukdump/modules.load", mode: cpio.S_IFREG | 0o644, target: `lib/modules/6.1.0-test-amd64/kernel/drivers/virtio/virtio_ring.ko
lib/modules/6.1.0-test-amd64/kernel/drivers/virtio/virtio.ko
lib/modules/6.1.0-test-amd64/kernel/drivers/virtio/virtio_pci_modern_dev.ko
lib/modules/6.1.0-test-amd64/kernel/drivers/virtio/virtio_pci_legacy_dev.ko
lib/modules/6.1.0-test-amd64/kernel/drivers/virtio/virtio_pci.ko
lib/modules/6.1.0-test-amd64/kernel/drivers/block/virtio_blk.ko.xz
lib/modules/6.1.0-test-amd64/kernel/crypto/crc32c_generic.ko
lib/modules/6.1.0-test-amd64/kernel/fs/jbd2/jbd2.ko
lib/modules/6.1.0-test-amd64/kernel/fs/mbcache.ko
lib/modules/6.1.0-test-amd64/kernel/fs/ext4/ext4.ko
`},
			} {
				r, ok := recs[tt.name]
				if !ok {
					t.Errorf("record %s missing", tt.name)
					continue
				}
				if r.Mode != tt.mode || r.Rmajor != tt.rdev[0] || r.Rminor != tt.rdev[1] {
					t.Errorf("record %s: mode %#o rdev %d:%d, want %#o %d:%d", tt.name, r.Mode, r.Rmajor, r.Rminor, tt.mode, tt.rdev[0], tt.rdev[1])
				}
				if got := content(t, r); got != tt.target {
					t.Errorf("record %s content = %q, want %q", tt.name, got, tt.target)
				}
			}
			for _, n := range names {
				if strings.Contains(n, "crc32c_intel") || strings.Contains(n, "crc16") || strings.Contains(n, "cyc") {
					t.Errorf("record %s should not be in the image", n)
				}
			}
		})
	}
}

func TestBuildReproducible(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd, XZ, None} {
		t.Run(string(c), func(t *testing.T) {
			o := testOpts(t)
			o.Compression = c
			var a, b bytes.Buffer
			if _, err := Build(&a, o); err != nil {
				t.Fatal(err)
			}
			// Same inputs from another place, and written at another time.
			o2 := testOpts(t)
			o2.Compression = c
			if err := os.Chtimes(o2.Busybox, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := Build(&b, o2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("Build() twice with the same inputs gave different bytes (%d and %d)", a.Len(), b.Len())
			}
			o2.MTime++
			b.Reset()
			if _, err := Build(&b, o2); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("Build() with another MTime gave the same bytes")
			}
		})
	}
}

func TestBuildMinimal(t *testing.T) {
	o := testOpts(t)
	var buf bytes.Buffer
	res, err := Build(&buf, Opts{Busybox: o.Busybox, Compression: None})
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if res.Modules != nil || res.Warnings != nil {
		t.Errorf("Build() = %+v, want no modules and no warnings", res)
	}
	recs, _ := readRecords(t, buf.Bytes())
	for _, c := range layout.BusyboxCommands() {
		if got := content(t, recs["bbin/"+c]); got != "bb" {
			t.Errorf("bbin/%s -> %q, want bb", c, got)
		}
	}
	for n, want := range map[string]string{"etc/ukdump/modules.load": "", "etc/ukdump/ukdump.toml": ""} {
		if r, ok := recs[n]; !ok || content(t, r) != want {
			t.Errorf("record %s missing or not empty", n)
		}
	}
	if r := recs["lib/modules"]; r.Mode != cpio.S_IFDIR|0o755 || r.MTime != 0 {
		t.Errorf("lib/modules = %v, want directory 0755 with mtime 0", r.Info)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		modify func(*Opts)
		want   string // substring of the error
		is     error
	}{
		{"no busybox", func(o *Opts) { o.Busybox = "" }, "no busybox", nil},
		{"busybox missing", func(o *Opts) { o.Busybox += ".missing" }, "reading busybox", os.ErrNotExist},
		{"bad compression", func(o *Opts) { o.Compression = "lz4" }, `unknown compression "lz4"`, nil},
		{"bad mtime", func(o *Opts) { o.MTime = -1 }, "mtime -1", nil},
		{"bad command", func(o *Opts) { o.Commands = []string{"a/b"} }, `command name "a/b"`, nil},
		{"module missing", func(o *Opts) { o.Modules = append(o.Modules, "foo") }, `module "foo" not found in`, ErrModuleNotFound},
		{"no kernel version", func(o *Opts) { o.KernelVersion = "" }, "no kernel version", nil},
		{"no modules dir", func(o *Opts) { o.ModulesDir = t.TempDir() }, "modules.dep", os.ErrNotExist},
		{"extra file missing", func(o *Opts) { o.Files[0].Src += ".missing" }, "reading extra file", os.ErrNotExist},
		{"extra file clash", func(o *Opts) { o.Files[1].Dst = "/bbin/bb" }, "already in the image", nil},
		{"extra file escapes", func(o *Opts) { o.Files[1].Dst = "../x" }, "invalid destination", nil},
		{"extra file under symlink", func(o *Opts) { o.Files[1].Dst = "bin/x" }, "parent bin is not a directory", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testOpts(t)
			tt.modify(&o)
			_, err := Build(io.Discard, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "initramfs: ") {
				t.Fatalf("Build() = %v, want error containing %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Build() = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestBuildDebianModules(t *testing.T) {
	dir := debianModulesDir(t)
	o := testOpts(t)
	o.KernelVersion, o.ModulesDir = filepath.Base(dir), ""
	o.Modules, o.OptionalModules = nil, DefaultModules(true, true)
	var buf bytes.Buffer
	res, err := Build(&buf, o)
	if err != nil {
		t.Fatalf("Build(%q) = %v", o.OptionalModules, err)
	}
	if res.Warnings != nil {
		t.Errorf("Build(%q) warnings = %q, want none", o.OptionalModules, res.Warnings)
	}
	recs, _ := readRecords(t, decompress(t, buf.Bytes(), Gzip))
	load := strings.Fields(content(t, recs["etc/ukdump/modules.load"]))
	if len(load) != len(res.Modules) {
		t.Errorf("modules.load = %q, want %d lines for %q", load, len(res.Modules), res.Modules)
	}
	for _, p := range load {
		want, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(p, "lib/modules/"+o.KernelVersion+"/")))
		if err != nil {
			t.Fatal(err)
		}
		r, ok := recs[p]
		if !ok || content(t, r) != string(want) {
			t.Errorf("module %s missing from the image or different", p)
		}
	}
	t.Logf("image with %d modules: %d bytes gzip, %d bytes cpio", len(load), res.Size, res.UncompressedSize)
}

// The size check's module term needs each module's size as the kernel
// loads it: decompressed.
func TestLoadedSize(t *testing.T) {
	ko := bytes.Repeat([]byte("\x7fELF module "), 10000)
	var xzb, gzb bytes.Buffer
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(ko)
	xw.Close()
	gw := gzip.NewWriter(&gzb)
	gw.Write(ko)
	gw.Close()
	zw, _ := zstd.NewWriter(nil)
	zst := zw.EncodeAll(ko, nil)
	for _, tt := range []struct {
		name string
		data []byte
	}{{"a.ko", ko}, {"a.ko.xz", xzb.Bytes()}, {"a.ko.gz", gzb.Bytes()}, {"a.ko.zst", zst}} {
		if n, err := loadedSize(tt.name, tt.data); err != nil || n != int64(len(ko)) {
			t.Errorf("loadedSize(%s) = %d, %v; want %d", tt.name, n, err, len(ko))
		}
	}
	if _, err := loadedSize("bad.ko.xz", []byte("not xz")); err == nil || !strings.Contains(err.Error(), "bad.ko.xz") {
		t.Errorf("loadedSize of a broken .ko.xz = %v, want an error naming it", err)
	}
}
