// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_capture

package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// addNetModules adds the network drivers of Debian's 6.1 kernel to a
// fakeModulesDir: virtio_net needs net_failover and failover (modules.dep
// order), e1000e needs nothing.
func addNetModules(t *testing.T, dir string) {
	t.Helper()
	lines := []string{
		"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
		"kernel/net/core/failover.ko:",
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:",
	}
	f, err := os.OpenFile(filepath.Join(dir, "modules.dep"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
		m := strings.TrimSuffix(strings.Fields(l)[0], ":")
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(m)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeNetSysfs is a sysfs with lo, eth0 (e1000e), enp1s0 (virtio_net, "-"
// spelt as a module file name may), br0 (virtual), and wlan0 whose driver is
// built in (no module link), and buildEnv's disk vdb.
func fakeNetSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"class/net/lo", "class/net/br0", "class/net/eth0/device/driver", "class/net/enp1s0/device/driver", "class/net/wlan0/device/driver", "module"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for iface, mod := range map[string]string{"eth0": "e1000e", "enp1s0": "virtio-net"} {
		if err := os.Symlink("../../../../../module/"+mod, filepath.Join(root, "class/net", iface, "device/driver/module")); err != nil {
			t.Fatal(err)
		}
	}
	fakeDisk(t, root, "", "vdb") // buildEnv's disk, for the disk targets
	return root
}

// netTargetConfig returns a config with one sftp target, and writes its
// identity and known_hosts.
func netTargetConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, kh := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{"dumphost.example:22"}, sshPub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[[target]]\nurl = \"sftp://kdump@dumphost.example/var/crash\"\nidentity = %q\nknown_hosts = %q\n", id, kh)
}

// loadOrder returns the modules.load of an image, as module file paths.
func loadOrder(t *testing.T, img string) []string {
	t.Helper()
	r, ok := readImage(t, img)["etc/ukdump/modules.load"]
	if !ok {
		t.Fatalf("image %s has no etc/ukdump/modules.load", img)
	}
	var paths []string
	for _, l := range strings.Fields(content(t, r)) {
		paths = append(paths, strings.TrimPrefix(l, "lib/modules/"+testKver+"/"))
	}
	return paths
}

var wantNetModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko",
	"kernel/drivers/net/virtio_net.ko",
}

func TestBuildNetworkTarget(t *testing.T) {
	e := newBuildEnv(t, netTargetConfig(t))
	addNetModules(t, e.modules)
	out := filepath.Join(e.outDir, "ukdump.img")
	stdout, stderr, err := run(t, Context{Args: e.args(out)})
	if err != nil {
		t.Fatalf("Execute(%q) = %v\nstderr: %s", e.args(out), err, stderr)
	}
	if diff := cmp.Diff(wantNetModules, loadOrder(t, out)); diff != "" {
		t.Errorf("modules.load of an sftp config (-want, +got):\n%s", diff)
	}
	recs := readImage(t, out)
	for _, m := range []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"} {
		if _, ok := recs["lib/modules/"+testKver+"/"+m]; !ok {
			t.Errorf("image has no %s", m)
		}
	}
	for _, m := range []string{"virtio_blk.ko", "ext4.ko", "e1000e.ko"} {
		for name := range recs {
			if strings.HasSuffix(name, "/"+m) {
				t.Errorf("image of a network-only config has %s", name)
			}
		}
	}
	if !strings.Contains(stdout, "modules (8): virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net") {
		t.Errorf("Execute(build) stdout = %q, want the 8 network modules", stdout)
	}
}

func TestBuildHostonly(t *testing.T) {
	sys := fakeNetSysfs(t)
	for _, tt := range []struct {
		name, config string
		want         []string // modules.load
		stdout       string
		stderr       string
	}{
		{
			name:   "network target",
			config: netTargetConfig(t),
			want:   append(append([]string(nil), wantNetModules...), "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"),
			stdout: "ukdump build: --hostonly: network drivers: enp1s0 virtio_net, eth0 e1000e\n",
		},
		{
			name:   "disk target only",
			config: validConfig,
			want:   wantModules,
			stderr: "ukdump build: warning: --hostonly: no network target, so no network driver added\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newBuildEnv(t, tt.config)
			addNetModules(t, e.modules)
			out := filepath.Join(e.outDir, "ukdump.img")
			args := e.args(out, "--hostonly", "--sysfs", sys)
			stdout, stderr, err := run(t, Context{Args: args})
			if err != nil {
				t.Fatalf("Execute(%q) = %v\nstderr: %s", args, err, stderr)
			}
			if diff := cmp.Diff(tt.want, loadOrder(t, out)); diff != "" {
				t.Errorf("modules.load (-want, +got):\n%s", diff)
			}
			if !strings.HasPrefix(stdout, tt.stdout) {
				t.Errorf("Execute(%q) stdout = %q, want it to start with %q", args, stdout, tt.stdout)
			}
			if stderr != tt.stderr {
				t.Errorf("Execute(%q) stderr = %q, want %q", args, stderr, tt.stderr)
			}
		})
	}
}

func TestBuildHostonlyNoDrivers(t *testing.T) {
	sys := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sys, "class/net/lo"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newBuildEnv(t, netTargetConfig(t))
	addNetModules(t, e.modules)
	out := filepath.Join(e.outDir, "ukdump.img")
	args := e.args(out, "--hostonly", "--sysfs", sys)
	_, stderr, err := run(t, Context{Args: args})
	if err != nil {
		t.Fatalf("Execute(%q) = %v", args, err)
	}
	if want := "ukdump build: warning: --hostonly: no network interface with a driver module in " + filepath.Join(sys, "class/net") + "\n"; stderr != want {
		t.Errorf("Execute(%q) stderr = %q, want %q", args, stderr, want)
	}
	if diff := cmp.Diff(wantNetModules, loadOrder(t, out)); diff != "" {
		t.Errorf("modules.load (-want, +got):\n%s", diff)
	}
}

func TestBuildHostonlyNoSysfs(t *testing.T) {
	e := newBuildEnv(t, netTargetConfig(t))
	out := filepath.Join(e.outDir, "ukdump.img")
	missing := filepath.Join(t.TempDir(), "nosys")
	args := e.args(out, "--hostonly", "--sysfs", missing)
	_, _, err := run(t, Context{Args: args})
	if err == nil || !strings.Contains(err.Error(), "build: --hostonly: list network interfaces: open "+filepath.Join(missing, "class/net")) {
		t.Errorf("Execute(%q) = %v, want an error naming %s/class/net", args, err, missing)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("Execute(%q) wrote %s despite the error", args, out)
	}
}

func TestBuildSSHFiles(t *testing.T) {
	cfg := netTargetConfig(t)
	e := newBuildEnv(t, cfg)
	addNetModules(t, e.modules)
	out := filepath.Join(e.outDir, "ukdump.img")
	if _, stderr, err := run(t, Context{Args: e.args(out)}); err != nil {
		t.Fatalf("build = %v\n%s", err, stderr)
	}
	recs := readImage(t, out)
	var idPath, khPath string
	fmt.Sscanf(cfg[strings.Index(cfg, "identity = "):], "identity = %q\nknown_hosts = %q", &idPath, &khPath)
	for dst, src := range map[string]string{"etc/ukdump/target0/id": idPath, "etc/ukdump/target0/known_hosts": khPath} {
		r, ok := recs[dst]
		if !ok {
			t.Fatalf("image has no %s", dst)
		}
		want, _ := os.ReadFile(src)
		if content(t, r) != string(want) || r.Mode&0o777 != 0o600 {
			t.Errorf("%s: mode %o, content equal %v; want 0600 and %s's bytes", dst, r.Mode&0o777, content(t, r) == string(want), src)
		}
	}
	toml := content(t, recs["etc/ukdump/ukdump.toml"])
	if !strings.Contains(toml, `identity = "/etc/ukdump/target0/id"`) || !strings.Contains(toml, `known_hosts = "/etc/ukdump/target0/known_hosts"`) {
		t.Errorf("the image's config does not point at the baked keys:\n%s", toml)
	}

	for _, tt := range []struct {
		name, config, wantErr, wantWarn string
	}{
		{"host not in known_hosts", strings.Replace(cfg, "dumphost.example/", "otherhost.example/", 1), "has no entry for otherhost.example:22", ""},
		{"no known_hosts", cfg[:strings.Index(cfg, "known_hosts =")], "target[0].known_hosts", ""},
		{"no known_hosts but insecure", cfg[:strings.Index(cfg, "known_hosts =")] + "insecure_ignore_host_key = true\n", "", "insecure_ignore_host_key"},
		{"identity is not a key", strings.Replace(cfg, idPath, khPath, 1), "target[0].identity", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newBuildEnv(t, tt.config)
			addNetModules(t, e.modules)
			out := filepath.Join(e.outDir, "ukdump.img")
			_, stderr, err := run(t, Context{Args: e.args(out)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("build = %v, want an error containing %q", err, tt.wantErr)
				}
				if _, serr := os.Stat(out); serr == nil {
					t.Errorf("an image was written despite the error")
				}
				return
			}
			if err != nil || !strings.Contains(stderr, tt.wantWarn) {
				t.Errorf("build = %v, stderr %q; want success and a warning containing %q", err, stderr, tt.wantWarn)
			}
		})
	}
}
