// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeModulesDir writes a modules directory modelled on Debian's 6.1 kernel
// (dependencies listed in reverse load order, crc32c only a softdep) with a
// few oddities: crc16 built in, a compressed module, a cycle, post softdeps.
// Each .ko file contains its own path.
func fakeModulesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test-amd64")
	files := map[string]string{
		"modules.dep": `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/x/cyc-a.ko: kernel/x/cyc_b.ko
kernel/x/cyc_b.ko: kernel/x/cyc-a.ko
kernel/x/soft1.ko:
kernel/x/soft2.ko:
kernel/x/withpost.ko:
kernel/x/postdep.ko: kernel/x/withpost.ko
kernel/x/broken.ko: kernel/x/absent.ko
`,
		"modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c
softdep withpost pre: no-such-alias post: postdep
softdep soft1 pre: soft2
softdep soft2 pre: soft1
`,
		"modules.alias": `# Aliases extracted from modules themselves.
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias fs-ext4 ext4
alias virtio:d00000002v* virtio_blk
`,
		"modules.builtin": "kernel/lib/crc16.ko\nkernel/lib/libcrc32c.ko\n",
	}
	for _, line := range strings.Split(strings.TrimSpace(files["modules.dep"]), "\n") {
		if m := strings.TrimSuffix(strings.Fields(line)[0], ":"); !strings.Contains(m, "broken") {
			files[m] = m
		}
	}
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

func moduleNames(mods []Module) []string {
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	return names
}

func TestResolveModules(t *testing.T) {
	dir := fakeModulesDir(t)
	virtio := []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"}
	ext4 := []string{"crc32c_generic", "jbd2", "mbcache", "ext4"}
	for _, tt := range []struct {
		name  string
		names []string
		want  []string
	}{
		{"disk", []string{"virtio_pci", "virtio_blk", "ext4"}, append(append(slices.Clone(virtio), "virtio_blk"), ext4...)},
		{"ext4 first", []string{"ext4", "virtio_pci"}, append(slices.Clone(ext4), virtio...)},
		{"net", []string{"virtio_pci", "virtio_net"}, append(slices.Clone(virtio), "failover", "net_failover", "virtio_net")},
		{"dash in name", []string{"virtio-blk"}, []string{"virtio_ring", "virtio", "virtio_blk"}},
		{"alias", []string{"fs-ext4"}, ext4},
		{"glob alias", []string{"virtio:d00000002v00001AF4"}, []string{"virtio_ring", "virtio", "virtio_blk"}},
		{"builtin requested", []string{"crc16", "libcrc32c"}, nil},
		{"duplicates", []string{"ext4", "ext4", "jbd2"}, ext4},
		{"post softdep", []string{"withpost"}, []string{"withpost", "postdep"}},
		{"post softdep depends back", []string{"postdep"}, []string{"withpost", "postdep"}},
		{"none", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveModules(dir, tt.names)
			if err != nil {
				t.Fatalf("ResolveModules(%q) = %v", tt.names, err)
			}
			if diff := cmp.Diff(tt.want, moduleNames(got)); diff != "" {
				t.Errorf("ResolveModules(%q) names (-want +got):\n%s", tt.names, diff)
			}
		})
	}
}

func TestResolveModulesPaths(t *testing.T) {
	got, err := ResolveModules(fakeModulesDir(t), []string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Module{
		{"virtio_ring", "kernel/drivers/virtio/virtio_ring.ko"},
		{"virtio", "kernel/drivers/virtio/virtio.ko"},
		{"virtio_blk", "kernel/drivers/block/virtio_blk.ko.xz"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ResolveModules(virtio_blk) (-want +got):\n%s", diff)
	}
}

func TestResolveModulesErrors(t *testing.T) {
	dir := fakeModulesDir(t)
	for _, tt := range []struct {
		name    string
		names   []string
		notFnd  bool
		wantMsg string
	}{
		{"not found", []string{"ext4", "foo"}, true, `initramfs: module "foo" not found in ` + filepath.Join(dir, "modules.dep") + ` (kernel 6.1.0-test-amd64)`},
		{"missing dependency", []string{"broken"}, true, `initramfs: module "absent" not found in ` + filepath.Join(dir, "modules.dep") + ` (kernel 6.1.0-test-amd64)`},
		{"cycle", []string{"cyc_a"}, false, "initramfs: module dependency cycle: cyc_a -> cyc_b -> cyc_a"},
		{"cycle other end", []string{"cyc_b"}, false, "initramfs: module dependency cycle: cyc_b -> cyc_a -> cyc_b"},
		{"softdep cycle", []string{"soft1"}, false, "initramfs: module dependency cycle: soft1 -> soft2 -> soft1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveModules(dir, tt.names)
			if err == nil {
				t.Fatalf("ResolveModules(%q) = %v, want error", tt.names, moduleNames(got))
			}
			if errors.Is(err, ErrModuleNotFound) != tt.notFnd {
				t.Errorf("errors.Is(%v, ErrModuleNotFound) = %t, want %t", err, !tt.notFnd, tt.notFnd)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("ResolveModules(%q) = %q, want %q", tt.names, err, tt.wantMsg)
			}
		})
	}
	if _, err := ResolveModules(t.TempDir(), []string{"ext4"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ResolveModules(empty dir) = %v, want %v", err, os.ErrNotExist)
	}
}

func TestDefaultModules(t *testing.T) {
	for _, tt := range []struct {
		disk, net bool
		want      []string
	}{
		{false, false, nil},
		{true, false, []string{"virtio_pci", "virtio_blk", "ext4"}},
		{false, true, []string{"virtio_pci", "virtio_net"}},
		{true, true, []string{"virtio_pci", "virtio_blk", "ext4", "virtio_net"}},
	} {
		if diff := cmp.Diff(tt.want, DefaultModules(tt.disk, tt.net)); diff != "" {
			t.Errorf("DefaultModules(%t, %t) (-want +got):\n%s", tt.disk, tt.net, diff)
		}
	}
}

// debianModulesDir returns the modules directory of an installed Debian 6.1
// kernel, which this machine and CI install (linux-image-6.1.0-*-amd64).
func debianModulesDir(t *testing.T) string {
	t.Helper()
	deps, _ := filepath.Glob("/lib/modules/6.1.*-amd64/modules.dep")
	if len(deps) == 0 {
		t.Fatal("no Debian 6.1 kernel modules in /lib/modules/6.1.*-amd64: install linux-image-amd64 (Debian 12)")
	}
	return filepath.Dir(deps[len(deps)-1])
}

func TestResolveModulesDebian(t *testing.T) {
	dir := debianModulesDir(t)
	names := []string{"virtio_pci", "virtio_blk", "ext4", "virtio_net"}
	mods, err := ResolveModules(dir, names)
	if err != nil {
		t.Fatalf("ResolveModules(%s, %q) = %v", dir, names, err)
	}
	got := moduleNames(mods)
	t.Logf("load order: %q", got)
	pos := func(n string) int {
		i := slices.Index(got, n)
		if i < 0 {
			t.Fatalf("ResolveModules(%s, %q) = %q, missing %s", dir, names, got, n)
		}
		return i
	}
	for _, before := range [][2]string{
		{"crc32c_generic", "ext4"}, {"crc32c_generic", "jbd2"}, {"jbd2", "ext4"}, {"mbcache", "ext4"},
		{"virtio_ring", "virtio"}, {"virtio", "virtio_pci"}, {"virtio_pci_modern_dev", "virtio_pci"},
		{"virtio", "virtio_blk"}, {"failover", "net_failover"}, {"net_failover", "virtio_net"},
	} {
		if pos(before[0]) > pos(before[1]) {
			t.Errorf("ResolveModules(%s, %q) = %q; want %s before %s", dir, names, got, before[0], before[1])
		}
	}
	if slices.Contains(got, "crc32c_intel") {
		t.Errorf("ResolveModules(%s, %q) = %q; want crc32c_generic only, not crc32c_intel", dir, names, got)
	}
	for _, m := range mods {
		if _, err := os.Stat(filepath.Join(dir, m.Path)); err != nil {
			t.Errorf("module %s: %v", m.Name, err)
		}
	}
}
