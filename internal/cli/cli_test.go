// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ukdump/ukdump/internal/kexec"
)

const testKver = "6.1.0-test-amd64"

// fakeModulesDir writes a modules directory with the disk modules of Debian's
// 6.1 kernel: modules.dep lists dependencies in reverse load order, ext4 and
// jbd2 have a crc32c pre softdep resolved through modules.alias. Each .ko
// holds its own path.
func fakeModulesDir(t *testing.T, omit ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), testKver)
	files := map[string]string{
		"modules.dep": `kernel/fs/mbcache.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`,
		"modules.softdep": "# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crypto-crc32c\nsoftdep jbd2 pre: crypto-crc32c\n",
		"modules.alias":   "# Aliases extracted from modules themselves.\nalias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\nalias fs-ext4 ext4\n",
		"modules.builtin": "kernel/lib/libcrc32c.ko\n",
	}
	var dep []string
	for _, line := range strings.Split(strings.TrimSpace(files["modules.dep"]), "\n") {
		m := strings.TrimSuffix(strings.Fields(line)[0], ":")
		if omitted(m, omit) {
			continue
		}
		dep = append(dep, line)
		files[m] = m
	}
	files["modules.dep"] = strings.Join(dep, "\n") + "\n"
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func omitted(path string, omit []string) bool {
	for _, o := range omit {
		if strings.HasSuffix(path, "/"+o+".ko") {
			return true
		}
	}
	return false
}

// wantModules is the load order of the default disk modules in fakeModulesDir.
var wantModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/drivers/block/virtio_blk.ko",
	"kernel/crypto/crc32c_generic.ko",
	"kernel/fs/jbd2/jbd2.ko",
	"kernel/fs/mbcache.ko",
	"kernel/lib/crc16.ko",
	"kernel/fs/ext4/ext4.ko",
}

const validConfig = `# dumps go to the crashdump disk
[[target]]
device = "LABEL=crashdump"
path = "/var/crash"

[action]
final = "reboot"
deadline = "10m"

[retention]
keep = 3
min_free = "512MiB"
`

// buildEnv is the inputs of a build: a busybox, a modules directory, a
// config, an empty output directory, and the sysfs and /dev of a build
// machine with the disk vdb (fakeDisk).
type buildEnv struct {
	busybox, modules, config, outDir, sys, dev string
}

// fakeDisk adds the virtio disk name to the sysfs sys, as host-only
// detection reads it: SYS/class/block/NAME links to its directory under
// devices/pci0000:00/0000:00:05.0/virtio2/block, whose parents are bound to
// the virtio-pci and virtio_blk drivers, with their module links. Unless dev
// is "", DEV/NAME holds an ext4 file system labelled crashdump.
func fakeDisk(t *testing.T, sys, dev, name string) {
	t.Helper()
	pci := "devices/pci0000:00/0000:00:05.0"
	disk := pci + "/virtio2/block/" + name
	for _, d := range []string{disk, "class/block", "bus/pci/drivers/virtio-pci", "bus/virtio/drivers/virtio_blk"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"class/block/" + name:                  "../../" + disk,
		pci + "/driver":                        "../../../bus/pci/drivers/virtio-pci",
		pci + "/virtio2/driver":                "../../../../bus/virtio/drivers/virtio_blk",
		"bus/pci/drivers/virtio-pci/module":    "../../../../module/virtio_pci",
		"bus/virtio/drivers/virtio_blk/module": "../../../../module/virtio_blk",
	} {
		if err := os.Symlink(target, filepath.Join(sys, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sys, disk, "size"), []byte("131072\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dev == "" {
		return
	}
	img := make([]byte, 4096) // an ext4 superblock (extents) at 1024, blkid's view
	binary.LittleEndian.PutUint16(img[1024+0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(img[1024+0x60:], 0x40)
	copy(img[1024+0x78:], "crashdump")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, name), img, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newBuildEnv(t *testing.T, config string, omit ...string) buildEnv {
	t.Helper()
	in := t.TempDir()
	e := buildEnv{
		busybox: filepath.Join(in, "bb"),
		modules: fakeModulesDir(t, omit...),
		config:  filepath.Join(in, "ukdump.toml"),
		outDir:  t.TempDir(),
		sys:     filepath.Join(in, "sys"),
		dev:     filepath.Join(in, "dev"),
	}
	fakeDisk(t, e.sys, e.dev, "vdb")
	if err := os.WriteFile(e.busybox, bytes.Repeat([]byte("\x7fELF fake busybox\n"), 1000), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e buildEnv) args(out string, extra ...string) []string {
	return append([]string{"build", "-c", e.config, "-o", out, "--busybox", e.busybox, "--kver", testKver, "--modules-dir", e.modules, "--sysfs", e.sys, "--dev", e.dev}, extra...)
}

// run executes args with env as the environment and returns stdout and stderr.
func run(t *testing.T, c Context) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	err = c.Execute()
	return o.String(), e.String(), err
}

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// readImage decompresses a gzip image and returns its records by name.
func readImage(t *testing.T, path string) map[string]cpio.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gzip.NewReader(%s) = %v", path, err)
	}
	archive, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip %s: %v", path, err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatalf("reading cpio records of %s: %v", path, err)
	}
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatalf("reading %s: %v", r.Name, err)
	}
	return string(b)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestBuild(t *testing.T) {
	e := newBuildEnv(t, validConfig)
	out := filepath.Join(e.outDir, "ukdump.img")
	stdout, stderr, err := run(t, Context{Args: e.args(out)})
	if err != nil {
		t.Fatalf("Execute(%q) = %v\nstderr: %s", e.args(out), err, stderr)
	}
	if stderr != "" {
		t.Errorf("Execute(build) stderr = %q, want none", stderr)
	}
	if diff := cmp.Diff([]string{"ukdump.img", "ukdump.img.json"}, dirNames(t, e.outDir)); diff != "" {
		t.Errorf("output directory (-want, +got):\n%s", diff)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("image mode = %v, want 0600", fi.Mode().Perm())
	}

	recs := readImage(t, out)
	kdir := "lib/modules/" + testKver + "/"
	var load strings.Builder
	for _, m := range wantModules {
		load.WriteString(kdir + m + "\n")
	}
	for _, tt := range []struct {
		name, content string
		mode          uint64
	}{
		{"init", "bbin/capture", cpio.S_IFLNK | 0o777},
		{"bbin/capture", "bb", cpio.S_IFLNK | 0o777},
		{"bbin/bb", strings.Repeat("\x7fELF fake busybox\n", 1000), cpio.S_IFREG | 0o755},
		{"etc/ukdump/ukdump.toml", validConfig, cpio.S_IFREG | 0o600},
		{"etc/ukdump/modules.load", load.String(), cpio.S_IFREG | 0o644},
		{kdir + "kernel/fs/ext4/ext4.ko", "kernel/fs/ext4/ext4.ko", cpio.S_IFREG | 0o644},
		{kdir + "kernel/drivers/block/virtio_blk.ko", "kernel/drivers/block/virtio_blk.ko", cpio.S_IFREG | 0o644},
	} {
		r, ok := recs[tt.name]
		if !ok {
			t.Errorf("image has no %s", tt.name)
			continue
		}
		if r.Mode != tt.mode {
			t.Errorf("image %s mode = %#o, want %#o", tt.name, r.Mode, tt.mode)
		}
		if got := content(t, r); got != tt.content {
			t.Errorf("image %s = %q, want %q", tt.name, got, tt.content)
		}
	}
	if _, ok := recs[kdir+"kernel/arch/x86/crypto/crc32c-intel.ko"]; ok {
		t.Errorf("image has crc32c-intel.ko, want only crc32c_generic for crypto-crc32c")
	}
	for _, w := range []string{
		"ukdump build: wrote " + out,
		fmt.Sprintf("(%d bytes)", fi.Size()),
		"unpacked",
		"kernel " + testKver,
		"modules (11): virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc32c_generic jbd2 mbcache crc16 ext4",
		// found on the build machine (fakeDisk), each with its reason
		"ukdump build: host-only: virtio_pci: driver of 0000:00:05.0, a parent of vdb, for target[0] LABEL=crashdump\n",
		"ukdump build: host-only: virtio_blk: driver of virtio2, a parent of vdb, for target[0] LABEL=crashdump\n",
		"ukdump build: host-only: ext4: file system ext4 on vdb, for target[0] LABEL=crashdump\n",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("Execute(build) stdout = %q, want it to contain %q", stdout, w)
		}
	}
}

// --generic builds for other machines: a target whose device is not here is
// no error; the broad set goes in, less what the kernel lacks (a warning
// each), and the image's size with and without it is printed.
// --generic=virtio is the set of every image before host-only detection.
func TestBuildGeneric(t *testing.T) {
	elsewhere := strings.Replace(validConfig, "LABEL=crashdump", "LABEL=elsewhere", 1)
	e := newBuildEnv(t, elsewhere)
	out := filepath.Join(e.outDir, "ukdump.img")
	args := e.args(out, "--generic")
	stdout, stderr, err := run(t, Context{Args: args})
	if err != nil {
		t.Fatalf("Execute(%q) = %v\nstderr: %s", args, err, stderr)
	}
	for _, w := range []string{
		"ukdump build: --generic=all: storage drivers and file systems for other machines: virtio_pci virtio_blk virtio_scsi ",
		"modules (11): virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc32c_generic jbd2 mbcache crc16 ext4",
		"ukdump build: --generic: the image is ",
		" with the generic set, ",
		" without it\n",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("Execute(%q) stdout = %q, want it to contain %q", args, stdout, w)
		}
	}
	for _, m := range []string{"nvme", "megaraid_sas", "xfs", "btrfs"} {
		if !strings.Contains(stderr, "ukdump build: warning: module \""+m+"\" not found") {
			t.Errorf("Execute(%q) stderr = %q, want a warning about %s", args, stderr, m)
		}
	}

	args = e.args(out, "--generic=virtio")
	stdout, stderr, err = run(t, Context{Args: args})
	if err != nil || stderr != "" {
		t.Fatalf("Execute(%q) = %v\nstderr: %s", args, err, stderr)
	}
	for _, w := range []string{
		"ukdump build: --generic=virtio: storage drivers and file systems for other machines: virtio_pci virtio_blk ext4\n",
		"modules (11): virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk crc32c_generic jbd2 mbcache crc16 ext4",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("Execute(%q) stdout = %q, want it to contain %q", args, stdout, w)
		}
	}
}

func TestBuildMissingOptionalModule(t *testing.T) {
	e := newBuildEnv(t, validConfig, "virtio_blk")
	out := filepath.Join(e.outDir, "ukdump.img")
	stdout, stderr, err := run(t, Context{Args: e.args(out)})
	if err != nil {
		t.Fatalf("Execute(build) without virtio_blk = %v", err)
	}
	if !strings.Contains(stderr, `ukdump build: warning: module "virtio_blk" not found`) {
		t.Errorf("Execute(build) stderr = %q, want a warning about virtio_blk", stderr)
	}
	if !strings.Contains(stdout, "modules (10):") {
		t.Errorf("Execute(build) stdout = %q, want 10 modules", stdout)
	}
}

func TestBuildReproducible(t *testing.T) {
	e := newBuildEnv(t, validConfig)
	env := envOf(map[string]string{"SOURCE_DATE_EPOCH": "1700000000"})
	var images [][]byte
	for _, name := range []string{"a.img", "b.img"} {
		out := filepath.Join(e.outDir, name)
		if _, stderr, err := run(t, Context{Args: e.args(out), Getenv: env}); err != nil {
			t.Fatalf("Execute(%q) = %v\n%s", e.args(out), err, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, b)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Errorf("two builds with SOURCE_DATE_EPOCH=1700000000 differ (%d and %d bytes)", len(images[0]), len(images[1]))
	}
	for name, r := range readImage(t, filepath.Join(e.outDir, "a.img")) {
		if r.MTime != 1700000000 {
			t.Errorf("image %s mtime = %d, want 1700000000", name, r.MTime)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		config  string
		args    func(e buildEnv, out string) []string
		env     map[string]string
		want    []string
		isUsage bool
	}{
		{
			name:   "invalid config",
			config: validConfig + "[network]\nmode = \"bootp\"\n",
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			want:   []string{"ukdump.toml", "network.mode", `unsupported mode "bootp"`},
		},
		{
			name:   "invalid config, several fields",
			config: "[[target]]\ndevice = \"FOO=bar\"\n[action]\nfinal = \"explode\"\n",
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			want:   []string{"target[0].device", "action.final"},
		},
		{
			name:   "missing config file",
			config: validConfig,
			args: func(e buildEnv, out string) []string {
				return []string{"build", "-c", e.config + ".nosuch", "-o", out, "--busybox", e.busybox}
			},
			want: []string{"build:", "no such file"},
		},
		{
			name:   "bad SOURCE_DATE_EPOCH",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			env:    map[string]string{"SOURCE_DATE_EPOCH": "bad"},
			want:   []string{`SOURCE_DATE_EPOCH="bad"`},
		},
		{
			name:   "negative SOURCE_DATE_EPOCH",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			env:    map[string]string{"SOURCE_DATE_EPOCH": "-1"},
			want:   []string{"mtime -1"},
		},
		{
			name:   "bogus compression",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return e.args(out, "--compress", "bogus") },
			want:   []string{`unknown compression "bogus"`},
		},
		{
			name:   "missing module",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return e.args(out, "--module", "nosuch") },
			want:   []string{`module "nosuch" not found`},
		},
		{
			name:   "fstype module missing",
			config: strings.Replace(validConfig, `path = "/var/crash"`, "path = \"/var/crash\"\nfstype = \"xfs\"", 1),
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			want:   []string{`module "xfs" not found`},
		},
		{
			name:   "target not on this machine",
			config: strings.Replace(validConfig, "LABEL=crashdump", "LABEL=elsewhere", 1),
			args:   func(e buildEnv, out string) []string { return e.args(out) },
			want: []string{`target[0]: LABEL=elsewhere: no such device on this machine (blkid lists: vdb ext4 LABEL="crashdump"`,
				"build with --generic to include drivers for other machines"},
		},
		{
			name:    "unknown generic set",
			config:  validConfig,
			args:    func(e buildEnv, out string) []string { return e.args(out, "--generic=floppies") },
			want:    []string{`unknown set "floppies"`},
			isUsage: true,
		},
		{
			name:   "missing busybox",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return e.args(out, "--busybox", e.busybox+".nosuch") },
			want:   []string{"reading busybox"},
		},
		{
			name:   "default config missing",
			config: validConfig,
			args:   func(e buildEnv, out string) []string { return []string{"build", "-o", out, "--kver", testKver} },
			want:   []string{"/etc/ukdump/ukdump.toml"},
		},
		{
			name:    "unknown flag",
			config:  validConfig,
			args:    func(e buildEnv, out string) []string { return e.args(out, "--frobnicate") },
			want:    []string{"frobnicate"},
			isUsage: true,
		},
		{
			name:    "extra argument",
			config:  validConfig,
			args:    func(e buildEnv, out string) []string { return e.args(out, "extra") },
			want:    []string{"unexpected arguments"},
			isUsage: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newBuildEnv(t, tt.config)
			out := filepath.Join(e.outDir, "ukdump.img")
			args := tt.args(e, out)
			_, _, err := run(t, Context{Args: args, Getenv: envOf(tt.env)})
			if err == nil {
				t.Fatalf("Execute(%q) = nil, want error containing %q", args, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Execute(%q) = %q, want it to contain %q", args, err, w)
				}
			}
			if errors.Is(err, ErrUsage) != tt.isUsage {
				t.Errorf("Execute(%q) = %v; errors.Is(err, ErrUsage) = %t, want %t", args, err, !tt.isUsage, tt.isUsage)
			}
			if names := dirNames(t, e.outDir); len(names) != 0 {
				t.Errorf("Execute(%q) failed but left %q in the output directory", args, names)
			}
		})
	}
}

func TestExecuteUsage(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		wantErr    error
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantErr: ErrUsage, wantStderr: "usage: ukdump COMMAND"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: ErrUsage, wantStderr: "usage: ukdump COMMAND"},
		{name: "help", args: []string{"help"}, wantStdout: "usage: ukdump COMMAND"},
		{name: "--help", args: []string{"--help"}, wantStdout: "usage: ukdump COMMAND"},
		{name: "version", args: []string{"version"}, wantStdout: "ukdump "},
		{name: "build -h", args: []string{"build", "-h"}, wantErr: flag.ErrHelp, wantStderr: "usage: ukdump build [-c CONFIG] [-o IMAGE]"},
		{name: "load -h", args: []string{"load", "-h"}, wantErr: flag.ErrHelp, wantStderr: "usage: ukdump load [--initrd IMAGE]"},
		{name: "unload with argument", args: []string{"unload", "now"}, wantErr: ErrUsage},
		{name: "status with flag", args: []string{"status", "-x"}, wantErr: ErrUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := run(t, Context{Args: tt.args})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Execute(%q) = %v, want %v", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("Execute(%q) stdout = %q, want it to contain %q", tt.args, stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("Execute(%q) stderr = %q, want it to contain %q", tt.args, stderr, tt.wantStderr)
			}
		})
	}
}

// realKernel returns the Debian 6.1 kernel this machine and CI install.
func realKernel(t *testing.T) string {
	t.Helper()
	ks, _ := filepath.Glob("/boot/vmlinuz-6.1*")
	if len(ks) == 0 {
		t.Fatal("no /boot/vmlinuz-6.1*: install linux-image-amd64 (Debian 12)")
	}
	return ks[len(ks)-1]
}

// loadCall is one call of the fake kexec_file_load.
type loadCall struct {
	Kernel, Initrd string // what the fds refer to; "" for -1
	Cmdline        string
	Flags          int
}

// fakeSystem is a /proc and /sys under a temp dir, the real kernel and a
// small gzip initrd, and a FileLoad that records its calls.
type fakeSystem struct {
	dir, kernel, initrd string
	calls               []loadCall
	ret                 error
}

const procCmdline = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet crashkernel=256M console=ttyS0\n"

func newFakeSystem(t *testing.T, reserved int64, loaded string) *fakeSystem {
	t.Helper()
	dir := t.TempDir()
	s := &fakeSystem{dir: dir, kernel: realKernel(t), initrd: filepath.Join(dir, "ukdump.img")}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(bytes.Repeat([]byte("070701 fake cpio\n"), 4096)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"proc/cmdline":                  procCmdline,
		"proc/sys/kernel/osrelease":     strings.TrimPrefix(filepath.Base(s.kernel), "vmlinuz-") + "\n",
		"sys/kernel/kexec_crash_size":   strconv.FormatInt(reserved, 10) + "\n",
		"sys/kernel/kexec_crash_loaded": loaded + "\n",
		"ukdump.img":                    gz.String(),
		// A 1 GiB machine with 2 CPUs, as a non-root user sees it.
		"proc/iomem":                      "00000000-00000000 : System RAM\n00000000-00000000 : System RAM\n",
		"proc/meminfo":                    "MemTotal:        1012672 kB\nMemFree:          512000 kB\n",
		"sys/devices/system/cpu/possible": "0-1\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fakeDisk(t, filepath.Join(dir, "sys"), "", "vda1") // targets resolve to /dev/vda1
	return s
}

func fdPath(fd int) string {
	if fd < 0 {
		return ""
	}
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return fmt.Sprintf("fd %d: %v", fd, err)
	}
	return p
}

func (s *fakeSystem) context(args ...string) Context {
	return Context{
		Args: args,
		Loader: kexec.Loader{
			ProcRoot: filepath.Join(s.dir, "proc"),
			SysRoot:  filepath.Join(s.dir, "sys"),
			FileLoad: func(kernelFd, initrdFd int, cmdline string, flags int) error {
				s.calls = append(s.calls, loadCall{fdPath(kernelFd), fdPath(initrdFd), cmdline, flags})
				return s.ret
			},
		},
	}
}

func TestLoad(t *testing.T) {
	const (
		reserve256 = 256 << 20
		reserve64  = 64 << 20
	)
	for _, tt := range []struct {
		name     string
		reserved int64
		args     func(s *fakeSystem) []string
		ret      error
		wantErr  []string
		wantIs   error
		wantCmd  []string // words the command line must have
	}{
		{
			name:     "loads",
			reserved: reserve256,
			args:     func(s *fakeSystem) []string { return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd} },
			wantCmd:  []string{"console=ttyS0", "reset_devices", "nr_cpus=1", "irqpoll", "panic=10"},
		},
		{
			name:     "default kernel from osrelease",
			reserved: reserve256,
			args:     func(s *fakeSystem) []string { return []string{"load", "--initrd", s.initrd} },
			wantCmd:  []string{"console=ttyS0", "reset_devices", "nr_cpus=1", "irqpoll", "panic=10"},
		},
		{
			name:     "append",
			reserved: reserve256,
			args: func(s *fakeSystem) []string {
				return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd, "--append", "ukdump.action=poweroff ukdump.debug"}
			},
			wantCmd: []string{"console=ttyS0", "reset_devices", "panic=10", "ukdump.action=poweroff", "ukdump.debug"},
		},
		{
			name:     "too small refused",
			reserved: reserve64,
			args:     func(s *fakeSystem) []string { return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd} },
			wantErr:  []string{"load:", "64.0 MiB reserved", "crashkernel=", "--force"},
			wantIs:   kexec.ErrReservationTooSmall,
		},
		{
			name:     "too small forced",
			reserved: reserve64,
			args: func(s *fakeSystem) []string {
				return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd, "--force"}
			},
			wantCmd: []string{"console=ttyS0", "reset_devices", "nr_cpus=1", "irqpoll", "panic=10"},
		},
		{
			name:     "no reservation",
			reserved: 0,
			args: func(s *fakeSystem) []string {
				return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd, "--force"}
			},
			wantErr: []string{"load:", "crashkernel="},
			wantIs:  kexec.ErrNoReservation,
		},
		{
			name:     "syscall fails",
			reserved: reserve256,
			args:     func(s *fakeSystem) []string { return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd} },
			ret:      syscall.EADDRNOTAVAIL,
			wantErr:  []string{"load: SYS_kexec_file_load", "crashkernel="},
			wantIs:   syscall.EADDRNOTAVAIL,
			wantCmd:  []string{"console=ttyS0"},
		},
		{
			name:     "missing initrd",
			reserved: reserve256,
			args: func(s *fakeSystem) []string {
				return []string{"load", "--kernel", s.kernel, "--initrd", s.initrd + ".nosuch"}
			},
			wantErr: []string{"load:", "ukdump.img.nosuch"},
			wantIs:  os.ErrNotExist,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, tt.reserved, "0")
			s.ret = tt.ret
			args := tt.args(s)
			stdout, _, err := run(t, s.context(args...))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Execute(%q) = nil, want error containing %q", args, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Execute(%q) = %q, want it to contain %q", args, err, w)
					}
				}
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("Execute(%q) = %v, want errors.Is %v", args, err, tt.wantIs)
				}
			} else {
				if err != nil {
					t.Fatalf("Execute(%q) = %v", args, err)
				}
				if !strings.Contains(stdout, "ukdump load: loading crash kernel "+s.kernel) || !strings.Contains(stdout, "ukdump load: capture kernel loaded") {
					t.Errorf("Execute(%q) stdout = %q, want the loading and loaded lines", args, stdout)
				}
			}
			if tt.wantCmd == nil {
				if len(s.calls) != 0 {
					t.Errorf("Execute(%q) called kexec_file_load %+v, want no call", args, s.calls)
				}
				return
			}
			if len(s.calls) != 1 {
				t.Fatalf("Execute(%q) called kexec_file_load %d times (%+v), want once", args, len(s.calls), s.calls)
			}
			c := s.calls[0]
			if c.Kernel != s.kernel || c.Initrd != s.initrd {
				t.Errorf("kexec_file_load fds = %q, %q, want %q, %q", c.Kernel, c.Initrd, s.kernel, s.initrd)
			}
			if c.Flags&2 == 0 || c.Flags&1 != 0 {
				t.Errorf("kexec_file_load flags = %#x, want KEXEC_FILE_ON_CRASH (0x2) and not KEXEC_FILE_UNLOAD", c.Flags)
			}
			words := strings.Fields(c.Cmdline)
			for _, w := range tt.wantCmd {
				if !contains(words, w) {
					t.Errorf("kexec_file_load cmdline = %q, want it to contain %q", c.Cmdline, w)
				}
			}
			for _, w := range words {
				for _, bad := range []string{"crashkernel=", "quiet", "root=", "ro", "BOOT_IMAGE="} {
					if w == bad || strings.HasPrefix(w, bad) && strings.HasSuffix(bad, "=") {
						t.Errorf("kexec_file_load cmdline = %q, want no %q", c.Cmdline, bad)
					}
				}
			}
		})
	}
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

func TestUnload(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "1")
	stdout, _, err := run(t, s.context("unload"))
	if err != nil {
		t.Fatalf("Execute(unload) = %v", err)
	}
	if diff := cmp.Diff([]loadCall{{Flags: 3}}, s.calls); diff != "" {
		t.Errorf("Execute(unload) kexec_file_load calls (-want, +got):\n%s", diff)
	}
	if !strings.Contains(stdout, "capture kernel unloaded") {
		t.Errorf("Execute(unload) stdout = %q, want it to say unloaded", stdout)
	}

	s = newFakeSystem(t, 256<<20, "1")
	s.ret = syscall.EPERM
	if _, _, err := run(t, s.context("unload")); !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "unload:") {
		t.Errorf("Execute(unload) with EPERM = %v, want an unload: error wrapping EPERM", err)
	}
}

const noDumps = "last capture: none (no dump directory on the local targets)\n"

// statusConfig writes a config whose one target is dir on this machine.
func statusConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ukdump.toml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("[[target]]\npath = %q\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reserved int64
		loaded   string
		want     string
	}{
		{"loaded", 256 << 20, "1", "capture kernel: loaded\ncrashkernel reservation: 256.0 MiB\n" + noDumps},
		{"not loaded", 256 << 20, "0", "capture kernel: not loaded\ncrashkernel reservation: 256.0 MiB\n" + noDumps},
		{"no reservation", 0, "0", "capture kernel: not loaded\ncrashkernel reservation: 0 B\n" +
			"no memory is reserved: add crashkernel=256M to the kernel command line and reboot\n" + noDumps},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeSystem(t, tt.reserved, tt.loaded)
			c := s.context("status")
			c.ConfigPath = statusConfig(t, t.TempDir())
			stdout, _, err := run(t, c)
			if err != nil {
				t.Fatalf("Execute(status) = %v", err)
			}
			if diff := cmp.Diff(tt.want, stdout); diff != "" {
				t.Errorf("Execute(status) stdout (-want, +got):\n%s", diff)
			}
			if len(s.calls) != 0 {
				t.Errorf("Execute(status) called kexec_file_load: %+v", s.calls)
			}
		})
	}
	s := newFakeSystem(t, 256<<20, "0")
	if err := os.Remove(filepath.Join(s.dir, "sys/kernel/kexec_crash_loaded")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, s.context("status")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "status:") {
		t.Errorf("Execute(status) without kexec_crash_loaded = %v, want a status: error wrapping %v", err, os.ErrNotExist)
	}
}
