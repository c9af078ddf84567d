// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"

	"github.com/ukdump/ukdump/internal/config"
)

// fakeLinks records the operations done on it as ip(8) commands.
type fakeLinks struct {
	links []Link
	ops   []string
	// fail makes the operation whose record starts with the key fail.
	fail map[string]error
	// routes answers RouteGet; a missing address has no route.
	routes map[string]Route
}

func (f *fakeLinks) List() ([]Link, error) {
	if err := f.fail["list"]; err != nil {
		return nil, err
	}
	return f.links, nil
}

func (f *fakeLinks) do(op string) error {
	f.ops = append(f.ops, op)
	for k, err := range f.fail {
		if strings.HasPrefix(op, k) {
			return err
		}
	}
	return nil
}

func (f *fakeLinks) SetUp(l Link) error { return f.do("link set " + l.Name + " up") }

func (f *fakeLinks) AddrReplace(l Link, a *net.IPNet) error {
	return f.do(fmt.Sprintf("addr replace %s dev %s", a, l.Name))
}

func (f *fakeLinks) RouteReplace(r Route) error { return f.do("route replace " + r.String()) }

func (f *fakeLinks) RouteGet(ip net.IP) (Route, error) {
	r, ok := f.routes[ip.String()]
	if !ok {
		return Route{}, errors.New("network is unreachable")
	}
	return r, nil
}

var (
	lo     = Link{Name: "lo", Index: 1, Loopback: true}
	tunl0  = Link{Name: "tunl0", Index: 2}
	eth0   = Link{Name: "eth0", Index: 3, MAC: mac("52:54:00:12:34:56"), Ether: true}
	eth1   = Link{Name: "eth1", Index: 4, MAC: mac("52:54:00:ab:cd:ef"), Ether: true}
	dummy0 = Link{Name: "dummy0", Index: 5, MAC: mac("aa:bb:cc:dd:ee:ff"), Ether: true}
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func cidr(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip.To4()
	return n
}

// iface describes one interface in a fake sysfs.
type iface struct {
	name    string
	carrier string // "" for no carrier file
	driver  string // "" for a virtual device (no device/)
}

// fakeSysfs writes SysRoot/class/net/NAME/{carrier,device/driver} and
// returns the sysfs root.
func fakeSysfs(t *testing.T, ifs ...iface) string {
	t.Helper()
	root := t.TempDir()
	for _, i := range ifs {
		dir := filepath.Join(root, "class", "net", i.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if i.carrier != "" {
			setCarrier(t, root, i.name, i.carrier)
		}
		if i.driver != "" {
			if err := os.MkdirAll(filepath.Join(dir, "device"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../../../bus/pci/drivers/"+i.driver, filepath.Join(dir, "device", "driver")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func setCarrier(t *testing.T, sysRoot, name, v string) { setFile(t, sysRoot, name, "carrier", v) }

func setFile(t *testing.T, sysRoot, name, file, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(sysRoot, "class", "net", name, file), []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// env is a fake machine: links, sysfs, a root for resolv.conf, a clock
// that Sleep advances, and a log.
type env struct {
	links   *fakeLinks
	sysRoot string
	root    string
	now     time.Time
	log     []string
	// onSleep runs at each Sleep with the number of sleeps so far.
	onSleep func(n int)
	sleeps  int
	lease   Lease
	dhcpErr error
	dhcp    []string
}

func newEnv(t *testing.T, links []Link, ifs ...iface) *env {
	return &env{
		links:   &fakeLinks{links: links, fail: map[string]error{}},
		sysRoot: fakeSysfs(t, ifs...),
		root:    t.TempDir(),
		now:     time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func (e *env) opts() Opts {
	return Opts{
		Root: e.root, SysRoot: e.sysRoot, Links: e.links,
		DHCP: func(ctx context.Context, l Link, timeout time.Duration, retries int) (Lease, error) {
			e.dhcp = append(e.dhcp, fmt.Sprintf("%s timeout %s retries %d", l.Name, timeout, retries))
			e.now = e.now.Add(50 * time.Millisecond)
			return e.lease, e.dhcpErr
		},
		Resolve: func(ctx context.Context, host string) ([]net.IP, error) {
			if host == "dumphost.example" {
				return []net.IP{net.ParseIP("192.0.2.9")}, nil
			}
			return nil, fmt.Errorf("lookup %s: no such host", host)
		},
		Logf: func(format string, args ...any) { e.log = append(e.log, fmt.Sprintf(format, args...)) },
		Now:  func() time.Time { return e.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.sleeps++
			e.now = e.now.Add(d)
			if e.onSleep != nil {
				e.onSleep(e.sleeps)
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return nil
		},
	}
}

func (e *env) resolvConf(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, "etc", "resolv.conf"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) logContains(t *testing.T, want ...string) {
	t.Helper()
	all := strings.Join(e.log, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("log = %q, want it to contain %q", all, w)
		}
	}
}

func TestUpStatic(t *testing.T) {
	e := newEnv(t, []Link{lo, eth0}, iface{"lo", "", ""}, iface{"eth0", "1", "virtio_net"})
	cfg := config.Network{Interface: "eth0", Mode: ModeStatic, Address: "192.0.2.20/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53", "2001:db8::53"}}
	got, err := Up(context.Background(), cfg, e.opts())
	if err != nil {
		t.Fatalf("Up(%+v) = %v", cfg, err)
	}
	if diff := cmp.Diff(Result{Interface: "eth0", Address: "192.0.2.20/24", Gateway: "192.0.2.1"}, got); diff != "" {
		t.Errorf("Up() result (-want, +got):\n%s", diff)
	}
	wantOps := []string{
		"link set lo up",
		"link set eth0 up",
		"addr replace 192.0.2.20/24 dev eth0",
		"route replace default via 192.0.2.1 dev #3",
	}
	if diff := cmp.Diff(wantOps, e.links.ops); diff != "" {
		t.Errorf("Up() operations (-want, +got):\n%s", diff)
	}
	if got, want := e.resolvConf(t), "# written by ukdump\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"; got != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}
	if len(e.dhcp) != 0 {
		t.Errorf("Up(static) ran DHCP: %q", e.dhcp)
	}
	e.logContains(t, "chose eth0 (52:54:00:12:34:56, virtio_net, carrier 1) after 0.00s",
		"eth0: static address 192.0.2.20/24, gateway 192.0.2.1", "network: up on eth0")
}

func TestUpStaticVariants(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     config.Network
		wantOps []string
		resolv  string
	}{
		{
			name:    "no gateway, no dns",
			cfg:     config.Network{Interface: "eth0", Mode: ModeStatic, Address: "10.1.2.3/8"},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 10.1.2.3/8 dev eth0"},
		},
		{
			name:    "gateway outside the prefix is on-link",
			cfg:     config.Network{Interface: "eth0", Mode: ModeStatic, Address: "203.0.113.7/32", Gateway: "203.0.113.1"},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 203.0.113.7/32 dev eth0", "route replace default via 203.0.113.1 dev #3 onlink"},
		},
		{
			name:    "IPv6",
			cfg:     config.Network{Interface: "eth0", Mode: ModeStatic, Address: "2001:db8::20/64", Gateway: "2001:db8::1"},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 2001:db8::20/64 dev eth0", "route replace default via 2001:db8::1 dev #3"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []Link{lo, eth0}, iface{"eth0", "1", "e1000e"})
			if _, err := Up(context.Background(), tt.cfg, e.opts()); err != nil {
				t.Fatalf("Up(%+v) = %v", tt.cfg, err)
			}
			if diff := cmp.Diff(tt.wantOps, e.links.ops); diff != "" {
				t.Errorf("Up() operations (-want, +got):\n%s", diff)
			}
			if got := e.resolvConf(t); got != tt.resolv {
				t.Errorf("resolv.conf = %q, want %q", got, tt.resolv)
			}
		})
	}
}

func TestUpDHCP(t *testing.T) {
	base := Lease{
		Address: cidr("10.0.2.15/24"), Server: net.ParseIP("10.0.2.2"),
		Routers: []net.IP{net.ParseIP("10.0.2.2"), net.ParseIP("10.0.2.3")},
		DNS:     []net.IP{net.ParseIP("10.0.2.3")}, Domain: "example", Search: []string{"example", "corp.example"},
		Duration: 24 * time.Hour,
	}
	for _, tt := range []struct {
		name    string
		cfg     config.Network
		lease   func(Lease) Lease
		want    Result
		wantOps []string
		resolv  string
		log     []string
	}{
		{
			name: "router and dns",
			cfg:  config.Network{},
			want: Result{Interface: "eth0", Address: "10.0.2.15/24", Gateway: "10.0.2.2", Took: 50 * time.Millisecond},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 10.0.2.15/24 dev eth0",
				"route replace default via 10.0.2.2 dev #3"},
			resolv: "# written by ukdump\ndomain example\nsearch example corp.example\nnameserver 10.0.2.3\n",
			log: []string{
				"network: eth0: DHCP lease from 10.0.2.2: 10.0.2.15/24, router 10.0.2.2 10.0.2.3, dns 10.0.2.3, domain example, search example corp.example, for 24h0m0s",
				"network: up on eth0: 10.0.2.15/24, gateway 10.0.2.2, dns 10.0.2.3, in 0.05s",
			},
		},
		{
			name: "classless routes win over the router option",
			cfg:  config.Network{},
			lease: func(l Lease) Lease {
				l.Routes = []Route{{Dst: cidr("192.168.0.0/16"), Gw: net.ParseIP("10.0.2.9")}, {Dst: cidr("10.0.3.0/24"), Gw: net.IPv4zero}, {Dst: cidr("0.0.0.0/0"), Gw: net.ParseIP("10.0.2.1")}}
				return l
			},
			want: Result{Interface: "eth0", Address: "10.0.2.15/24", Gateway: "10.0.2.1", Took: 50 * time.Millisecond},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 10.0.2.15/24 dev eth0",
				"route replace 192.168.0.0/16 via 10.0.2.9 dev #3", "route replace 10.0.3.0/24 dev #3", "route replace default via 10.0.2.1 dev #3"},
			resolv: "# written by ukdump\ndomain example\nsearch example corp.example\nnameserver 10.0.2.3\n",
		},
		{
			name: "a /32 lease reaches its router on-link; config dns replaces the lease's",
			cfg:  config.Network{DNS: []string{"192.0.2.53"}, DHCPTimeout: config.Duration{Duration: 2 * time.Second}, DHCPRetries: 1},
			lease: func(l Lease) Lease {
				l.Address = cidr("203.0.113.7/32")
				l.Routers = []net.IP{net.ParseIP("203.0.113.1")}
				return l
			},
			want: Result{Interface: "eth0", Address: "203.0.113.7/32", Gateway: "203.0.113.1", Took: 50 * time.Millisecond},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 203.0.113.7/32 dev eth0",
				"route replace default via 203.0.113.1 dev #3 onlink"},
			resolv: "# written by ukdump\ndomain example\nsearch example corp.example\nnameserver 192.0.2.53\n",
		},
		{
			name: "no router, no dns: no route, resolv.conf untouched",
			cfg:  config.Network{},
			lease: func(l Lease) Lease {
				l.Routers, l.DNS = nil, nil
				return l
			},
			want:    Result{Interface: "eth0", Address: "10.0.2.15/24", Took: 50 * time.Millisecond},
			wantOps: []string{"link set lo up", "link set eth0 up", "addr replace 10.0.2.15/24 dev eth0"},
			log:     []string{"network: up on eth0: 10.0.2.15/24, gateway none, dns none"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []Link{lo, eth0}, iface{"eth0", "1", "virtio_net"})
			e.lease = base
			if tt.lease != nil {
				e.lease = tt.lease(base)
			}
			got, err := Up(context.Background(), tt.cfg, e.opts())
			if err != nil {
				t.Fatalf("Up(%+v) = %v", tt.cfg, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Up() result (-want, +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOps, e.links.ops); diff != "" {
				t.Errorf("Up() operations (-want, +got):\n%s", diff)
			}
			if got := e.resolvConf(t); got != tt.resolv {
				t.Errorf("resolv.conf = %q, want %q", got, tt.resolv)
			}
			timeout, retries := config.DefaultDHCPTimeout, 0
			if tt.cfg.DHCPTimeout.Duration != 0 {
				timeout, retries = tt.cfg.DHCPTimeout.Duration, tt.cfg.DHCPRetries
			}
			if diff := cmp.Diff([]string{fmt.Sprintf("eth0 timeout %s retries %d", timeout, retries)}, e.dhcp); diff != "" {
				t.Errorf("DHCP calls (-want, +got):\n%s", diff)
			}
			e.logContains(t, tt.log...)
		})
	}
}

func TestPick(t *testing.T) {
	all := []Link{lo, tunl0, eth0, eth1, dummy0}
	for _, tt := range []struct {
		name  string
		iface string
		ifs   []iface
		// carrierAt sets carrier to 1 on this interface at this sleep.
		carrierOn string
		carrierAt int
		// operDown has operstate "down" until operUpAt.
		operDown string
		operUpAt int
		want     string
		wantTook time.Duration
		wantUp   []string
		log      []string
	}{
		{
			name:   "auto: physical before virtual, tunnels never",
			iface:  "auto",
			ifs:    []iface{{"tunl0", "1", ""}, {"eth0", "0", "e1000e"}, {"eth1", "1", "virtio_net"}, {"dummy0", "1", ""}},
			want:   "eth1",
			wantUp: []string{"link set lo up", "link set eth0 up", "link set eth1 up", "link set dummy0 up"},
			log:    []string{"network: chose eth1 (52:54:00:ab:cd:ef, virtio_net, carrier 1) after 0.00s"},
		},
		{
			name:   "auto: a virtual device when no physical one has carrier",
			iface:  "auto",
			ifs:    []iface{{"eth0", "0", "e1000e"}, {"eth1", "0", "virtio_net"}, {"dummy0", "1", ""}},
			want:   "dummy0",
			wantUp: []string{"link set lo up", "link set eth0 up", "link set eth1 up", "link set dummy0 up"},
		},
		{
			name:      "auto: carrier comes after 3 polls",
			iface:     "auto",
			ifs:       []iface{{"eth0", "0", "e1000e"}, {"eth1", "0", "virtio_net"}},
			carrierOn: "eth1", carrierAt: 3,
			want: "eth1", wantTook: 300 * time.Millisecond,
			wantUp: []string{"link set lo up", "link set eth0 up", "link set eth1 up", "link set dummy0 up"},
			log:    []string{"network: waiting up to 30s for carrier on eth0, eth1, dummy0", "after 0.30s"},
		},
		{
			name:      "auto: a carrier that comes later waits for operstate up",
			iface:     "auto",
			ifs:       []iface{{"eth0", "0", "e1000e"}},
			carrierOn: "eth0", carrierAt: 1, operDown: "eth0", operUpAt: 3,
			want: "eth0", wantTook: 300 * time.Millisecond,
			wantUp: []string{"link set lo up", "link set eth0 up", "link set eth1 up", "link set dummy0 up"},
		},
		{
			name:     "auto: carrier at setup is enough while operstate lags",
			iface:    "auto",
			ifs:      []iface{{"eth0", "1", "virtio_net"}},
			operDown: "eth0", operUpAt: 10,
			want:   "eth0",
			wantUp: []string{"link set lo up", "link set eth0 up", "link set eth1 up", "link set dummy0 up"},
			log:    []string{"network: chose eth0 (52:54:00:12:34:56, virtio_net, carrier 1, operstate down) after 0.00s"},
		},
		{
			name:   "by name: only that link goes up",
			iface:  "eth1",
			ifs:    []iface{{"eth0", "1", "e1000e"}, {"eth1", "1", "virtio_net"}},
			want:   "eth1",
			wantUp: []string{"link set lo up", "link set eth1 up"},
		},
		{
			name:   "by MAC, any case",
			iface:  "52:54:00:AB:CD:EF",
			ifs:    []iface{{"eth0", "1", "e1000e"}, {"eth1", "1", "virtio_net"}},
			want:   "eth1",
			wantUp: []string{"link set lo up", "link set eth1 up"},
		},
		{
			name:   "by MAC with dashes",
			iface:  "52-54-00-12-34-56",
			ifs:    []iface{{"eth0", "1", "e1000e"}},
			want:   "eth0",
			wantUp: []string{"link set lo up", "link set eth0 up"},
		},
		{
			name:   "by name without carrier: tried anyway after the wait",
			iface:  "eth0",
			ifs:    []iface{{"eth0", "0", "e1000e"}},
			want:   "eth0",
			wantUp: []string{"link set lo up", "link set eth0 up"}, wantTook: 30 * time.Second,
			log: []string{"network: warning: no carrier on eth0 after 30s (carrier 0); trying it anyway"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, all, tt.ifs...)
			if tt.operDown != "" {
				setFile(t, e.sysRoot, tt.operDown, "operstate", "down")
			}
			e.onSleep = func(n int) {
				if n == tt.carrierAt && tt.carrierOn != "" {
					setCarrier(t, e.sysRoot, tt.carrierOn, "1")
				}
				if n == tt.operUpAt && tt.operDown != "" {
					setFile(t, e.sysRoot, tt.operDown, "operstate", "up")
				}
			}
			start := e.now
			c := config.Network{Interface: tt.iface, WaitCarrier: config.Duration{Duration: config.DefaultWaitCarrier}}
			got, err := pick(context.Background(), c, e.opts().withDefaults())
			if err != nil {
				t.Fatalf("pick(%q) = %v", tt.iface, err)
			}
			if got.Name != tt.want {
				t.Errorf("pick(%q) = %s, want %s", tt.iface, got.Name, tt.want)
			}
			if took := e.now.Sub(start); took != tt.wantTook {
				t.Errorf("pick(%q) took %s, want %s", tt.iface, took, tt.wantTook)
			}
			if diff := cmp.Diff(tt.wantUp, e.links.ops); diff != "" {
				t.Errorf("pick(%q) operations (-want, +got):\n%s", tt.iface, diff)
			}
			e.logContains(t, tt.log...)
		})
	}
}

func TestUpErrors(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tt := range []struct {
		name  string
		cfg   config.Network
		links []Link
		ifs   []iface
		fail  map[string]error
		dhcp  error
		lease Lease
		want  []string
		is    error
	}{
		{
			name: "auto: nothing with carrier lists what it saw",
			cfg:  config.Network{WaitCarrier: config.Duration{Duration: 2 * time.Second}},
			ifs:  []iface{{"tunl0", "1", ""}, {"eth0", "0", "e1000e"}},
			want: []string{"network: no Ethernet interface with carrier after 2s (seen: lo (loopback), tunl0 (virtual, not Ethernet, carrier 1), eth0 (52:54:00:12:34:56, e1000e, carrier 0)",
				"--hostonly"},
		},
		{
			name:  "auto: no interfaces but lo",
			cfg:   config.Network{WaitCarrier: config.Duration{Duration: time.Second}},
			links: []Link{lo},
			want:  []string{"no Ethernet interface with carrier after 1s (seen: lo (loopback))"},
		},
		{
			name: "unknown name",
			cfg:  config.Network{Interface: "enp0s3", WaitCarrier: config.Duration{Duration: time.Second}},
			ifs:  []iface{{"eth0", "1", "virtio_net"}},
			want: []string{"network: no interface named enp0s3 after 1s (seen: lo (loopback), tunl0 (virtual, not Ethernet, carrier unknown), eth0 (52:54:00:12:34:56, virtio_net, carrier 1)", "not udev's"},
		},
		{
			name: "unknown MAC",
			cfg:  config.Network{Interface: "02:00:00:00:00:01", WaitCarrier: config.Duration{Duration: time.Second}},
			ifs:  []iface{{"eth0", "1", "virtio_net"}},
			want: []string{"network: no interface with MAC 02:00:00:00:00:01 after 1s (seen: ", "eth0 (52:54:00:12:34:56, virtio_net, carrier 1)"},
		},
		{
			name: "list fails",
			fail: map[string]error{"list": errBoom},
			want: []string{"network: list interfaces: boom"},
			is:   errBoom,
		},
		{name: "bad mode", cfg: config.Network{Mode: "bootp"}, want: []string{`network: unsupported mode "bootp" (want dhcp, static)`}},
		{name: "static without prefix", cfg: config.Network{Mode: ModeStatic, Address: "192.0.2.20"}, want: []string{`network: static address "192.0.2.20": want an address with prefix length, e.g. 192.0.2.20/24`}},
		{name: "static bad gateway", cfg: config.Network{Mode: ModeStatic, Address: "192.0.2.20/24", Gateway: "2001:db8::1"}, want: []string{`network: gateway "2001:db8::1" is not an IP address of the same family as 192.0.2.20/24`}},
		{name: "dhcp with address", cfg: config.Network{Address: "192.0.2.20/24"}, want: []string{`network: address "192.0.2.20/24" and gateway "" are for mode "static", not "dhcp"`}},
		{name: "bad dns", cfg: config.Network{DNS: []string{"dns.example"}}, want: []string{`network: DNS server "dns.example" is not an IP address`}},
		{name: "negative retries", cfg: config.Network{DHCPRetries: -1}, want: []string{"network: DHCP retries -1 must not be negative"}},
		{
			name: "dhcp fails",
			cfg:  config.Network{DHCPTimeout: config.Duration{Duration: time.Second}, DHCPRetries: 2},
			dhcp: errBoom,
			want: []string{"network: DHCPv4 on eth0 (first wait 1s, 2 retries, 0.05s since start): boom"},
			is:   errBoom,
		},
		{
			name:  "lease without address",
			lease: Lease{Server: net.ParseIP("10.0.2.2")},
			want:  []string{"network: DHCPv4 on eth0: the lease from 10.0.2.2 has no address"},
		},
		{
			name:  "address fails",
			lease: Lease{Address: cidr("10.0.2.15/24")},
			fail:  map[string]error{"addr replace": errBoom},
			want:  []string{"network: add address 10.0.2.15/24 to eth0: boom"},
			is:    errBoom,
		},
		{
			name:  "route fails",
			lease: Lease{Address: cidr("10.0.2.15/24"), Routers: []net.IP{net.ParseIP("10.0.2.2")}},
			fail:  map[string]error{"route replace": errBoom},
			want:  []string{"network: add route default via 10.0.2.2 dev #3 dev eth0: boom"},
			is:    errBoom,
		},
		{
			name: "static route fails",
			cfg:  config.Network{Mode: ModeStatic, Address: "192.0.2.20/24", Gateway: "192.0.2.1"},
			fail: map[string]error{"route replace": errBoom},
			want: []string{"network: add default route via 192.0.2.1 dev eth0: boom"},
			is:   errBoom,
		},
		{
			name: "static address fails",
			cfg:  config.Network{Mode: ModeStatic, Address: "192.0.2.20/24"},
			fail: map[string]error{"addr replace": errBoom},
			want: []string{"network: add address 192.0.2.20/24 to eth0: boom"},
			is:   errBoom,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			links := tt.links
			if links == nil {
				links = []Link{lo, tunl0, eth0}
			}
			ifs := tt.ifs
			if ifs == nil {
				ifs = []iface{{"eth0", "1", "virtio_net"}}
			}
			e := newEnv(t, links, ifs...)
			if tt.fail != nil {
				e.links.fail = tt.fail
			}
			e.lease, e.dhcpErr = tt.lease, tt.dhcp
			_, err := Up(context.Background(), tt.cfg, e.opts())
			if err == nil {
				t.Fatalf("Up(%+v) = nil, want an error containing %q", tt.cfg, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Up(%+v) = %q, want it to contain %q", tt.cfg, err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Up(%+v) = %v, want errors.Is %v", tt.cfg, err, tt.is)
			}
		})
	}
}

func TestUpCanceled(t *testing.T) {
	e := newEnv(t, []Link{lo, eth0}, iface{"eth0", "0", "virtio_net"})
	ctx, cancel := context.WithCancelCause(context.Background())
	errDeadline := errors.New("capture deadline passed")
	e.onSleep = func(n int) {
		if n == 2 {
			cancel(errDeadline)
		}
	}
	_, err := Up(ctx, config.Network{}, e.opts())
	if !errors.Is(err, errDeadline) {
		t.Fatalf("Up(canceled) = %v, want %v", err, errDeadline)
	}
	if want := "network: waiting for interface auto (seen: lo (loopback), eth0 (52:54:00:12:34:56, virtio_net, carrier 0))"; !strings.Contains(err.Error(), want) {
		t.Errorf("Up(canceled) = %q, want it to contain %q", err, want)
	}
}

func TestRouteTo(t *testing.T) {
	via := Route{Dst: cidr("192.0.2.9/32"), Gw: net.ParseIP("10.0.2.2"), Src: net.ParseIP("10.0.2.15"), LinkIndex: 3}
	for _, tt := range []struct {
		name    string
		host    string
		routeAt int // the route appears at this sleep; 0: from the start, -1: never
		want    Route
		wantErr []string
		log     string
	}{
		{name: "address with a route", host: "192.0.2.9", want: via, log: "network: route to 192.0.2.9 (192.0.2.9) via 10.0.2.2 dev eth0 src 10.0.2.15 after 0.00s"},
		{name: "name resolved", host: "dumphost.example", want: via, log: "network: route to dumphost.example (192.0.2.9) via 10.0.2.2 dev eth0"},
		{name: "route after 2 polls", host: "192.0.2.9", routeAt: 2, want: via, log: "after 0.20s"},
		{name: "never", host: "192.0.2.9", routeAt: -1, wantErr: []string{"network: no route to 192.0.2.9 after 0.5s: route to 192.0.2.9: network is unreachable (gave up: deadline)"}},
		{name: "unknown name", host: "nohost.example", routeAt: -1, wantErr: []string{"network: no route to nohost.example after 0.5s: resolve nohost.example: lookup nohost.example: no such host"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, []Link{lo, eth0})
			e.links.routes = map[string]Route{}
			if tt.routeAt == 0 {
				e.links.routes["192.0.2.9"] = via
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			e.onSleep = func(n int) {
				if n == tt.routeAt {
					e.links.routes["192.0.2.9"] = via
				}
				if n == 5 {
					cancel(errors.New("deadline"))
				}
			}
			got, err := RouteTo(ctx, tt.host, e.opts())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("RouteTo(%q) = %v, want an error", tt.host, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("RouteTo(%q) = %q, want it to contain %q", tt.host, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("RouteTo(%q) = %v", tt.host, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RouteTo(%q) (-want, +got):\n%s", tt.host, diff)
			}
			e.logContains(t, tt.log)
		})
	}
}

func TestLeaseFrom(t *testing.T) {
	ack, err := dhcpv4.New(
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.ParseIP("10.0.2.15")),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithServerIP(net.ParseIP("10.0.2.2")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.0.2.2"))),
		dhcpv4.WithRouter(net.ParseIP("10.0.2.2")),
		dhcpv4.WithDNS(net.ParseIP("10.0.2.3")),
		dhcpv4.WithLeaseTime(3600),
		dhcpv4.WithOption(dhcpv4.OptDomainName("example")),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"example", "corp.example"}})),
		dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(&dhcpv4.Route{Dest: cidr("192.168.0.0/16"), Router: net.ParseIP("10.0.2.9").To4()})),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := leaseFrom(ack)
	want := Lease{
		Address: cidr("10.0.2.15/24"), Server: net.ParseIP("10.0.2.2").To4(),
		Routers: []net.IP{net.ParseIP("10.0.2.2").To4()}, DNS: []net.IP{net.ParseIP("10.0.2.3").To4()},
		Routes: []Route{{Dst: &net.IPNet{IP: net.ParseIP("192.168.0.0").To4(), Mask: net.CIDRMask(16, 32)}, Gw: net.ParseIP("10.0.2.9").To4()}},
		Domain: "example", Search: []string{"example", "corp.example"}, Duration: time.Hour,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leaseFrom(ACK) (-want, +got):\n%s", diff)
	}

	bare, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.ParseIP("10.0.2.15")), dhcpv4.WithServerIP(net.ParseIP("10.0.2.2")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaseFrom(bare), (Lease{Address: cidr("10.0.2.15/32"), Server: net.ParseIP("10.0.2.2")}); !cmp.Equal(want, got) {
		t.Errorf("leaseFrom(bare ACK) = %+v, want %+v", got, want)
	}
	none, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	if err != nil {
		t.Fatal(err)
	}
	if got := leaseFrom(none); got.Address != nil {
		t.Errorf("leaseFrom(ACK without yiaddr).Address = %v, want nil", got.Address)
	}
}
