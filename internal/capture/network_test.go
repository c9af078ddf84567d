// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/capture"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/netup"
)

// netConfig has two sftp targets, then the disk. The identity is not in the
// fake root, so an sftp target that gets past the network fails at once.
const netConfig = `
[collect]
format = "elf"
exclude = ["none"]

[[target]]
url = "sftp://kdump@dumphost.example/var/crash"
identity = "/etc/ukdump/id_ed25519"
insecure_ignore_host_key = true

[[target]]
url = "scp://kdump@10.0.2.2:2222/var/crash"
identity = "/etc/ukdump/id_ed25519"
insecure_ignore_host_key = true

[[target]]
device = "LABEL=crashdump"
path = "/var/crash"
wait_device = "300ms"

[network]
interface = "52:54:00:12:34:56"
mode = "static"
address = "10.0.2.15/24"
gateway = "10.0.2.2"
dns = ["10.0.2.3"]
wait_carrier = "7s"
`

// netEnv is an Env whose network steps are recorded, on a clock that the
// bring-up moves 2.5s forward.
type netEnv struct {
	ups     []config.Network
	opts    []netup.Opts
	routes  []string
	upErr   error
	routeTo func(host string) error
	offset  time.Duration
}

func (n *netEnv) apply(env *capture.Env) {
	env.Now = func() time.Time { return time.Now().Add(n.offset) }
	env.NetworkUp = func(ctx context.Context, c config.Network, o netup.Opts) (netup.Result, error) {
		n.ups = append(n.ups, c)
		n.opts = append(n.opts, o)
		n.offset += 2500 * time.Millisecond
		o.Logf("network: up (fake)")
		return netup.Result{Interface: "eth0", Address: c.Address, Gateway: c.Gateway}, n.upErr
	}
	env.RouteTo = func(ctx context.Context, host string, o netup.Opts) (netup.Route, error) {
		n.routes = append(n.routes, host)
		if _, ok := ctx.Deadline(); !ok {
			return netup.Route{}, errors.New("RouteTo without a deadline")
		}
		if n.routeTo != nil {
			return netup.Route{}, n.routeTo(host)
		}
		return netup.Route{}, nil
	}
}

func readManifest(t *testing.T, r *fakeRoot, o capture.Outcome) capture.Manifest {
	t.Helper()
	mj, err := os.ReadFile(filepath.Join(r.dir, "mnt/target2/var/crash", o.Dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m capture.Manifest
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCaptureNetworkUpOnce(t *testing.T) {
	r := newFakeRoot(t, netConfig, true)
	var console bytes.Buffer
	n := &netEnv{routeTo: func(host string) error {
		if host == "dumphost.example" {
			return errors.New("network: no route to dumphost.example after 10.0s")
		}
		return nil
	}}
	env := r.env(&console)
	n.apply(&env)
	o := capture.Run(env)
	if o.Result != capture.ResultSaved || !strings.Contains(o.Target, "LABEL=crashdump") {
		t.Fatalf("Run = %+v, want saved on the disk after both network targets failed; console:\n%s", o, console.String())
	}
	want := config.Network{Interface: "52:54:00:12:34:56", Mode: "static", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"},
		WaitCarrier: config.Duration{Duration: 7 * time.Second}, DHCPTimeout: config.Duration{Duration: 4 * time.Second}, DHCPRetries: 3}
	if diff := cmp.Diff([]config.Network{want}, n.ups); diff != "" {
		t.Errorf("NetworkUp calls (-want, +got):\n%s", diff)
	}
	if o := n.opts[0]; o.Root != r.dir || o.SysRoot != filepath.Join(r.dir, "sys") || o.Logf == nil || o.Now == nil {
		t.Errorf("NetworkUp opts = %+v, want Root %s, SysRoot %s/sys, Logf and Now", o, r.dir, r.dir)
	}
	if diff := cmp.Diff([]string{"dumphost.example", "10.0.2.2"}, n.routes); diff != "" {
		t.Errorf("RouteTo hosts (-want, +got):\n%s", diff)
	}
	if m := readManifest(t, r, o); m.Durations.Network < 2.5 || m.Durations.Network > 3.5 {
		t.Errorf("manifest durations_seconds.network = %v, want about 2.5", m.Durations.Network)
	}
	for _, w := range []string{
		"ukdump: network: up (fake)",
		"ukdump: target 0 failed: network: no route to dumphost.example",
		"ukdump: target 1 failed: ", // the identity is missing
	} {
		if !strings.Contains(console.String(), w) {
			t.Errorf("console does not contain %q:\n%s", w, console.String())
		}
	}
}

func TestCaptureNetworkUpFails(t *testing.T) {
	r := newFakeRoot(t, netConfig, true)
	var console bytes.Buffer
	n := &netEnv{upErr: errors.New("network: no interface with MAC 52:54:00:12:34:56 after 7s (seen: lo (loopback))")}
	env := r.env(&console)
	n.apply(&env)
	o := capture.Run(env)
	if o.Result != capture.ResultSaved || !strings.Contains(o.Target, "LABEL=crashdump") {
		t.Fatalf("Run = %+v, want saved on the disk; console:\n%s", o, console.String())
	}
	if len(n.ups) != 1 || len(n.routes) != 0 {
		t.Errorf("NetworkUp called %d times and RouteTo %q, want once and never", len(n.ups), n.routes)
	}
	for _, i := range []string{"0", "1"} {
		w := "ukdump: target " + i + " failed: network bring-up failed after 2.50s: network: no interface with MAC 52:54:00:12:34:56 after 7s (seen: lo (loopback)) (see [network] in the config)"
		if !strings.Contains(console.String(), w) {
			t.Errorf("console does not contain %q:\n%s", w, console.String())
		}
	}
	if m := readManifest(t, r, o); m.Durations.Network < 2.5 || m.Durations.Network > 3.5 {
		t.Errorf("manifest durations_seconds.network = %v, want about 2.5", m.Durations.Network)
	}
}

func TestCaptureNoNetworkTargetNoBringUp(t *testing.T) {
	r := newFakeRoot(t, diskConfig, true)
	var console bytes.Buffer
	n := &netEnv{}
	env := r.env(&console)
	n.apply(&env)
	o := capture.Run(env)
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v, want saved; console:\n%s", o, console.String())
	}
	if len(n.ups) != 0 || len(n.routes) != 0 {
		t.Errorf("NetworkUp %d calls, RouteTo %q, want none for a disk target", len(n.ups), n.routes)
	}
	mj, err := os.ReadFile(filepath.Join(r.dir, "mnt/target0/var/crash", o.Dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mj), `"network"`) {
		t.Errorf("manifest.json has a network duration without a network target:\n%s", mj)
	}
}
