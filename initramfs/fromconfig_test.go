// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"crypto/ed25519"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/layout"
)

func TestHostNICs(t *testing.T) {
	// iface: its driver module link under device/driver, "" for none (a
	// built-in driver), "virtual" for no device at all.
	sys := t.TempDir()
	for iface, mod := range map[string]string{"lo": "", "br0": "virtual", "eth0": "e1000e", "enp1s0": "virtio-net", "wlan0": ""} {
		dir := filepath.Join(sys, "class/net", iface)
		if mod != "virtual" && iface != "lo" {
			dir = filepath.Join(dir, "device/driver")
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if mod != "" && mod != "virtual" {
			if err := os.Symlink("../../../../../module/"+mod, filepath.Join(dir, "module")); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := HostNICs(sys)
	if err != nil {
		t.Fatalf("HostNICs() = %v", err)
	}
	if diff := cmp.Diff([]NIC{{"enp1s0", "virtio_net"}, {"eth0", "e1000e"}}, got); diff != "" {
		t.Errorf("HostNICs() (-want, +got):\n%s", diff)
	}
}

// writeKey writes an OpenSSH private key and returns its path.
func writeKey(t *testing.T) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil) // fails only with a failing reader
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestForConfig(t *testing.T) {
	id := writeKey(t)
	mid := filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(mid, []byte("0123abcd\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	bb := filepath.Join(t.TempDir(), "bb")
	if err := os.WriteFile(bb, []byte("busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	nics := []NIC{{"eth0", "e1000e"}, {"enp1s0", "virtio_net"}}
	for _, tt := range []struct {
		name     string
		target   config.Target
		modules  []string // Opts.Modules
		optional []string // Opts.OptionalModules
		files    []string // Opts.Files' destinations
		warnings int
	}{
		{
			name:     "disk",
			target:   config.Target{Device: "LABEL=crashdump", Path: "/", FSType: "xfs"},
			modules:  []string{"dm_mod", "xfs"},
			optional: []string{"virtio_pci", "virtio_blk", "ext4"},
		},
		{
			name:     "network",
			target:   config.Target{URL: "sftp://kdump@dumphost/var/crash", Identity: id, InsecureIgnoreHostKey: true},
			modules:  []string{"dm_mod"},
			optional: []string{"virtio_pci", "virtio_net", "e1000e"},
			files:    []string{"/etc/ukdump/target0/id"},
			warnings: 1, // the host key is not checked
		},
		{
			name:     "auto device",
			target:   config.Target{Path: "/var/crash"},
			modules:  []string{"dm_mod"},
			optional: []string{"virtio_pci", "virtio_blk", "ext4"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Targets = []config.Target{tt.target}
			resolve := func(p string) (hostfs.FS, error) {
				return hostfs.FS{Path: p, FSPath: "/crash", Spec: "UUID=0a1b", Device: "/dev/vda3", FSType: "ext4", MountPoint: "/var"}, nil
			}
			ci, err := ForConfig(&cfg, []byte("toml"), ConfigOpts{Busybox: bb, KernelVersion: "6.1.0-test", Modules: []string{"dm_mod"}, NICs: nics, Resolve: resolve, Storage: GenericVirtio, Version: "v1", MachineID: mid})
			if err != nil {
				t.Fatalf("ForConfig(%s) = %v", tt.name, err)
			}
			var files []string
			for _, f := range ci.Opts.Files {
				files = append(files, f.Dst)
			}
			if diff := cmp.Diff(tt.modules, ci.Opts.Modules); diff != "" {
				t.Errorf("ForConfig(%s).Opts.Modules (-want, +got):\n%s", tt.name, diff)
			}
			if diff := cmp.Diff(tt.optional, ci.Opts.OptionalModules); diff != "" {
				t.Errorf("ForConfig(%s).Opts.OptionalModules (-want, +got):\n%s", tt.name, diff)
			}
			if diff := cmp.Diff(append(tt.files, layout.MachineIDPath, layout.RecordPath), files); diff != "" {
				t.Errorf("ForConfig(%s).Opts.Files (-want, +got):\n%s", tt.name, diff)
			}
			network := tt.target.IsNetwork()
			if ci.Network != network || len(ci.Warnings) != tt.warnings || ci.Opts.Busybox != bb || ci.Opts.KernelVersion != "6.1.0-test" {
				t.Errorf("ForConfig(%s) = %+v, want Network %v, %d warnings, busybox bb, kernel 6.1.0-test", tt.name, ci, network, tt.warnings)
			}
			// The image's config points at the key in the image; cfg is left as it was.
			auto := tt.target.AutoDevice()
			if toml := string(ci.Opts.ConfigTOML); network != strings.Contains(toml, `identity = "/etc/ukdump/target0/id"`) || !network && !auto && toml != "toml" {
				t.Errorf("ForConfig(%s).Opts.ConfigTOML = %q", tt.name, toml)
			}
			// A target without a device names the file system found here.
			if toml := string(ci.Opts.ConfigTOML); auto && (!strings.Contains(toml, `device = "UUID=0a1b"`) || !strings.Contains(toml, `path = "/crash"`) || len(ci.Resolved) != 1 || len(ci.Record.Devices) != 1) {
				t.Errorf("ForConfig(%s): config %q, resolved %+v, record %+v", tt.name, toml, ci.Resolved, ci.Record)
			}
			if r := ci.Record; r.KernelRelease != "6.1.0-test" || r.Version != "v1" || r.Config != sha256Hex([]byte("toml")) || r.Busybox != sha256Hex([]byte("busybox")) || len(r.Files) != len(tt.files)+1 || r.Files[layout.MachineIDPath] != sha256Hex([]byte("0123abcd")) {
				t.Errorf("ForConfig(%s).Record = %+v", tt.name, r)
			}
			if cfg.Targets[0] != tt.target {
				t.Errorf("ForConfig(%s) changed cfg.Targets[0] to %+v", tt.name, cfg.Targets[0])
			}
		})
	}
}
