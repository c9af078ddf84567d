// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package netup brings up the network in the capture environment for network dump targets.
//
// Up takes the loopback and one interface up (the first with carrier, or the
// one named by name or MAC), then configures it by DHCPv4 or statically and
// writes resolv.conf; RouteTo waits until the kernel has a route to a target's
// host. Everything that touches the machine is injected through Opts: the
// netlink operations (Links), the DHCP exchange, sysfs, the root holding
// etc/resolv.conf, the clock and sleeping. The zero Opts means the running
// system.
package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/config"
)

// Interface selection and modes of config.Network.
const (
	// InterfaceAuto picks the first Ethernet interface with carrier.
	InterfaceAuto = "auto"
	ModeDHCP      = "dhcp"
	ModeStatic    = "static"
)

// DefaultPoll is how often carrier and routes are polled.
const DefaultPoll = 100 * time.Millisecond

// Result is the network Up brought up.
type Result struct {
	// Interface is the name of the interface configured.
	Interface string
	// Address is its address with prefix length, e.g. "10.0.2.15/24".
	Address string
	// Gateway is the default gateway, empty if there is none.
	Gateway string
	// Took is the time from the start of Up to a configured interface.
	Took time.Duration
}

// Link is a network interface as the kernel lists it.
type Link struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	// Loopback is set for lo.
	Loopback bool
	// Ether is set for Ethernet-like links (ARPHRD_ETHER), the only ones
	// "auto" picks: not tunnels such as sit0 or tunl0.
	Ether bool
}

// Route is a route: to Dst (nil for the default route) through Gw (nil for
// a destination on the link) on the link with index LinkIndex.
type Route struct {
	Dst       *net.IPNet
	Gw        net.IP
	Src       net.IP
	LinkIndex int
	// OnLink marks a gateway outside the link's prefix as directly
	// reachable (needed for a /32 lease, for instance).
	OnLink bool
}

// Links are the netlink operations Up and RouteTo need.
type Links interface {
	// List returns the network interfaces.
	List() ([]Link, error)
	// SetUp sets a link administratively up.
	SetUp(l Link) error
	// AddrReplace adds addr (address and prefix) to the link, or updates it.
	AddrReplace(l Link, addr *net.IPNet) error
	// RouteReplace adds r, or replaces the route to the same destination.
	RouteReplace(r Route) error
	// RouteGet returns the route the kernel would take to dst.
	RouteGet(dst net.IP) (Route, error)
}

// Lease is the configuration a DHCP server handed out.
type Lease struct {
	// Address is the address with the subnet mask (/32 if none was given).
	Address *net.IPNet
	// Server is the DHCP server's identifier.
	Server net.IP
	// Routers are the default gateways (option 3), in preference order.
	Routers []net.IP
	// Routes are classless static routes (option 121); when present,
	// Routers are ignored (RFC 3442).
	Routes []Route
	DNS    []net.IP
	Domain string
	Search []string
	// Duration is the lease time.
	Duration time.Duration
}

// DHCPFunc runs a DHCPv4 exchange on a link: timeout for the first attempt,
// doubled at each of retries more.
type DHCPFunc func(ctx context.Context, l Link, timeout time.Duration, retries int) (Lease, error)

// Opts are the dependencies of Up and RouteTo; the zero value means the
// running system.
type Opts struct {
	// Root holds etc/resolv.conf (default "/").
	Root string
	// SysRoot is where sysfs is mounted: carrier, device and driver are
	// read from SysRoot/class/net/NAME (default "/sys").
	SysRoot string
	// Links does the netlink operations (default: netlink in the calling
	// thread's network namespace).
	Links Links
	// DHCP obtains a lease (default: DHCPv4 with insomniacslk/dhcp's nclient4).
	DHCP DHCPFunc
	// Resolve looks up a host name (default net.DefaultResolver.LookupIP).
	Resolve func(ctx context.Context, host string) ([]net.IP, error)
	// Logf logs a line (default: nothing).
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends, then returns ctx's cause (default:
	// a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Poll is the interval between carrier and route checks (default DefaultPoll).
	Poll time.Duration
}

func (o Opts) withDefaults() Opts {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.Links == nil {
		o.Links = defaultLinks()
	}
	if o.DHCP == nil {
		o.DHCP = defaultDHCP
	}
	if o.Resolve == nil {
		o.Resolve = func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// static is a parsed static configuration.
type static struct {
	addr *net.IPNet // nil in DHCP mode
	gw   net.IP
	dns  []net.IP
}

// parse checks c and fills in the defaults of the fields left zero: the
// interface "auto", mode "dhcp", config.DefaultWaitCarrier and
// config.DefaultDHCPTimeout.
func parse(c *config.Network) (static, error) {
	var s static
	if c.Interface == "" {
		c.Interface = InterfaceAuto
	}
	if c.Mode == "" {
		c.Mode = ModeDHCP
	}
	if c.WaitCarrier.Duration <= 0 {
		c.WaitCarrier.Duration = config.DefaultWaitCarrier
	}
	if c.DHCPTimeout.Duration <= 0 {
		c.DHCPTimeout.Duration = config.DefaultDHCPTimeout
	}
	if c.DHCPRetries < 0 {
		return s, fmt.Errorf("network: DHCP retries %d must not be negative", c.DHCPRetries)
	}
	for _, d := range c.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return s, fmt.Errorf("network: DNS server %q is not an IP address", d)
		}
		s.dns = append(s.dns, net.IP(a.AsSlice()))
	}
	switch c.Mode {
	case ModeDHCP:
		if c.Address != "" || c.Gateway != "" {
			return s, fmt.Errorf("network: address %q and gateway %q are for mode %q, not %q", c.Address, c.Gateway, ModeStatic, ModeDHCP)
		}
	case ModeStatic:
		p, err := netip.ParsePrefix(c.Address)
		if err != nil {
			return s, fmt.Errorf("network: static address %q: want an address with prefix length, e.g. 192.0.2.20/24", c.Address)
		}
		s.addr = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if c.Gateway != "" {
			g, err := netip.ParseAddr(c.Gateway)
			if err != nil || g.Is4() != p.Addr().Is4() {
				return s, fmt.Errorf("network: gateway %q is not an IP address of the same family as %s", c.Gateway, c.Address)
			}
			s.gw = g.AsSlice()
		}
	default:
		return s, fmt.Errorf("network: unsupported mode %q (want %s, %s)", c.Mode, ModeDHCP, ModeStatic)
	}
	return s, nil
}

// Up brings the network up:
//   - sets the loopback up;
//   - picks the interface: by name, by MAC, or ("auto") the first Ethernet
//     interface with carrier, after setting the candidates up and polling
//     SysRoot/class/net/*/{carrier,operstate} for up to WaitCarrier;
//   - configures it: a DHCPv4 lease (address, classless routes or default
//     gateway, DNS) or the static address and gateway;
//   - writes Root/etc/resolv.conf if there are name servers.
//
// It logs each step through Opts.Logf and returns what it configured. The
// fields of c left zero take the defaults the config has.
func Up(ctx context.Context, c config.Network, o Opts) (Result, error) {
	o = o.withDefaults()
	start := o.Now()
	st, err := parse(&c)
	if err != nil {
		return Result{}, err
	}
	l, err := pick(ctx, c, o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Interface: l.Name}
	var dns []net.IP
	var domain string
	var search []string
	switch c.Mode {
	case ModeStatic:
		if err := o.Links.AddrReplace(l, st.addr); err != nil {
			return res, fmt.Errorf("network: add address %s to %s: %w", st.addr, l.Name, err)
		}
		res.Address = st.addr.String()
		if st.gw != nil {
			r := Route{Gw: st.gw, LinkIndex: l.Index, OnLink: !st.addr.Contains(st.gw)}
			if err := o.Links.RouteReplace(r); err != nil {
				return res, fmt.Errorf("network: add default route via %s dev %s: %w", st.gw, l.Name, err)
			}
			res.Gateway = st.gw.String()
		}
		o.Logf("network: %s: static address %s, gateway %s", l.Name, res.Address, orNone(res.Gateway))
	default:
		lease, err := o.DHCP(ctx, l, c.DHCPTimeout.Duration, c.DHCPRetries)
		if err != nil {
			return res, fmt.Errorf("network: DHCPv4 on %s (first wait %s, %d retries, %.2fs since start): %w",
				l.Name, c.DHCPTimeout.Duration, c.DHCPRetries, o.Now().Sub(start).Seconds(), err)
		}
		if lease.Address == nil {
			return res, fmt.Errorf("network: DHCPv4 on %s: the lease from %s has no address", l.Name, lease.Server)
		}
		o.Logf("network: %s: DHCP lease from %s: %s", l.Name, lease.Server, lease)
		gw, err := applyLease(o.Links, l, lease)
		if err != nil {
			return res, err
		}
		res.Address, res.Gateway = lease.Address.String(), gw
		dns, domain, search = lease.DNS, lease.Domain, lease.Search
	}
	if len(st.dns) > 0 {
		dns = st.dns
	}
	if len(dns) > 0 {
		if err := writeResolvConf(o.Root, dns, domain, search); err != nil {
			return res, err
		}
	}
	res.Took = o.Now().Sub(start)
	o.Logf("network: up on %s: %s, gateway %s, dns %s, in %.2fs", res.Interface, res.Address, orNone(res.Gateway), orNone(ipsString(dns)), res.Took.Seconds())
	return res, nil
}

// applyLease adds the lease's address and routes to l and returns the
// default gateway, if any.
func applyLease(links Links, l Link, lease Lease) (string, error) {
	if err := links.AddrReplace(l, lease.Address); err != nil {
		return "", fmt.Errorf("network: add address %s to %s: %w", lease.Address, l.Name, err)
	}
	routes := lease.Routes
	if len(routes) == 0 && len(lease.Routers) > 0 {
		routes = []Route{{Gw: lease.Routers[0]}}
	}
	gw := ""
	for _, r := range routes {
		r.LinkIndex = l.Index
		if len(r.Gw) > 0 && !r.Gw.IsUnspecified() {
			r.OnLink = !lease.Address.Contains(r.Gw)
		} else {
			r.Gw = nil
		}
		if err := links.RouteReplace(r); err != nil {
			return gw, fmt.Errorf("network: add route %s dev %s: %w", r, l.Name, err)
		}
		if isDefault(r.Dst) && r.Gw != nil && gw == "" {
			gw = r.Gw.String()
		}
	}
	return gw, nil
}

func isDefault(n *net.IPNet) bool {
	if n == nil {
		return true
	}
	ones, _ := n.Mask.Size()
	return ones == 0
}

// String describes the lease for the log.
func (l Lease) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", l.Address)
	if len(l.Routes) > 0 {
		var rs []string
		for _, r := range l.Routes {
			rs = append(rs, r.String())
		}
		fmt.Fprintf(&b, ", routes %s", strings.Join(rs, "; "))
	} else {
		fmt.Fprintf(&b, ", router %s", orNone(ipsString(l.Routers)))
	}
	fmt.Fprintf(&b, ", dns %s", orNone(ipsString(l.DNS)))
	if l.Domain != "" {
		fmt.Fprintf(&b, ", domain %s", l.Domain)
	}
	if len(l.Search) > 0 {
		fmt.Fprintf(&b, ", search %s", strings.Join(l.Search, " "))
	}
	if l.Duration > 0 {
		fmt.Fprintf(&b, ", for %s", l.Duration)
	}
	return b.String()
}

// String describes the route like ip-route(8).
func (r Route) String() string {
	dst := "default"
	if !isDefault(r.Dst) {
		dst = r.Dst.String()
	}
	s := dst
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex != 0 {
		s += fmt.Sprintf(" dev #%d", r.LinkIndex)
	}
	if r.Src != nil {
		s += " src " + r.Src.String()
	}
	if r.OnLink {
		s += " onlink"
	}
	return s
}

func ipsString(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// writeResolvConf writes root/etc/resolv.conf.
func writeResolvConf(root string, dns []net.IP, domain string, search []string) error {
	var b strings.Builder
	b.WriteString("# written by ukdump\n")
	if domain != "" {
		fmt.Fprintf(&b, "domain %s\n", domain)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, ip := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	p := filepath.Join(root, "etc", "resolv.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("network: write DNS settings: %w", err)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("network: write DNS settings: %w", err)
	}
	return nil
}

// sysfs reads the per-interface files under SysRoot/class/net.
type sysfs string

func (s sysfs) dir(name string) string { return filepath.Join(string(s), "class", "net", name) }

// carrier is "1", "0", or why it is unknown (the kernel answers EINVAL
// while the link is down).
func (s sysfs) carrier(name string) string {
	b, err := os.ReadFile(filepath.Join(s.dir(name), "carrier"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "unknown"
		}
		return "unknown (link down)"
	}
	return strings.TrimSpace(string(b))
}

// operstate is the RFC 2863 state ("up", "down", "dormant", …); "unknown"
// if sysfs does not say, as for drivers that do not track it.
func (s sysfs) operstate(name string) string {
	b, err := os.ReadFile(filepath.Join(s.dir(name), "operstate"))
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// ready reports whether the link has carrier and sends what it is given.
// The kernel starts a link's queue when it has carrier: at once if it had
// carrier when it was set up (virtio_net, veth), otherwise when its link
// watch handles the carrier event, which also sets operstate "up". So a
// link with carrier at its first check is ready; one whose carrier came
// later is ready once operstate says so. (operstate itself lags up to a
// second behind a carrier present at setup: waiting for it there would
// cost that second; not waiting for it after a later carrier loses the
// first DHCP message, and a DHCP timeout.)
func (s sysfs) ready(name string, carrierAtSetup bool) bool {
	if s.carrier(name) != "1" {
		return false
	}
	if carrierAtSetup {
		return true
	}
	op := s.operstate(name)
	return op == "up" || op == "unknown"
}

// physical reports whether the interface has a device (virtual ones do not).
func (s sysfs) physical(name string) bool {
	_, err := os.Stat(filepath.Join(s.dir(name), "device"))
	return err == nil
}

// driver is the name of the interface's driver, or "".
func (s sysfs) driver(name string) string {
	p, err := os.Readlink(filepath.Join(s.dir(name), "device", "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(p)
}

// describe lists links for error messages: "eth0 (52:54:00:12:34:56,
// virtio_net, carrier 1), lo (loopback)".
func (s sysfs) describe(links []Link) string {
	if len(links) == 0 {
		return "none"
	}
	var d []string
	for _, l := range links {
		if l.Loopback {
			d = append(d, l.Name+" (loopback)")
			continue
		}
		f := []string{}
		if len(l.MAC) > 0 {
			f = append(f, l.MAC.String())
		}
		if drv := s.driver(l.Name); drv != "" {
			f = append(f, drv)
		} else if !s.physical(l.Name) {
			f = append(f, "virtual")
		}
		if !l.Ether {
			f = append(f, "not Ethernet")
		}
		f = append(f, "carrier "+s.carrier(l.Name))
		if op := s.operstate(l.Name); op != "up" && op != "unknown" {
			f = append(f, "operstate "+op)
		}
		d = append(d, fmt.Sprintf("%s (%s)", l.Name, strings.Join(f, ", ")))
	}
	return strings.Join(d, ", ")
}

// matcher selects the links Interface names: by MAC, by name, or every
// Ethernet link for "auto".
func matcher(iface string) func(Link) bool {
	if iface == InterfaceAuto {
		return func(l Link) bool { return !l.Loopback && l.Ether }
	}
	if mac, ok := parseMAC(iface); ok {
		return func(l Link) bool { return slices.Equal(l.MAC, mac) }
	}
	return func(l Link) bool { return l.Name == iface }
}

func isMAC(s string) bool {
	_, ok := parseMAC(s)
	return ok
}

// parseMAC parses s as a MAC address written with ':' or '-'.
func parseMAC(s string) (net.HardwareAddr, bool) {
	if !strings.ContainsAny(s, ":-") {
		return nil, false
	}
	mac, err := net.ParseMAC(s)
	return mac, err == nil
}

// pick sets the loopback and the candidate links up and returns the chosen
// link once it has carrier. A named link without carrier at the end of the
// wait is still returned (with a warning): some drivers never report it.
func pick(ctx context.Context, c config.Network, o Opts) (Link, error) {
	start := o.Now()
	deadline := start.Add(c.WaitCarrier.Duration)
	match := matcher(c.Interface)
	sys := sysfs(o.SysRoot)
	upDone := map[int]bool{}
	// atSetup records whether each candidate had carrier at its first check,
	// right after it was set up.
	atSetup := map[int]bool{}
	logged := false
	for {
		links, err := o.Links.List()
		if err != nil {
			return Link{}, fmt.Errorf("network: list interfaces: %w", err)
		}
		var cands []Link
		for _, l := range links {
			if l.Loopback && !upDone[l.Index] {
				upDone[l.Index] = true
				if err := o.Links.SetUp(l); err != nil {
					o.Logf("network: warning: set %s up: %v", l.Name, err)
				}
			}
			if match(l) {
				cands = append(cands, l)
			}
		}
		// Physical devices first, each group in the kernel's order.
		slices.SortStableFunc(cands, func(a, b Link) int {
			pa, pb := sys.physical(a.Name), sys.physical(b.Name)
			switch {
			case pa == pb:
				return a.Index - b.Index
			case pa:
				return -1
			default:
				return 1
			}
		})
		for _, l := range cands {
			if upDone[l.Index] {
				continue
			}
			upDone[l.Index] = true
			if err := o.Links.SetUp(l); err != nil {
				o.Logf("network: warning: set %s up: %v", l.Name, err)
			}
		}
		for _, l := range cands {
			if _, ok := atSetup[l.Index]; !ok {
				atSetup[l.Index] = sys.carrier(l.Name) == "1"
			}
			if sys.ready(l.Name, atSetup[l.Index]) {
				o.Logf("network: chose %s (%s) after %.2fs", l.Name, describeOne(sys, l), o.Now().Sub(start).Seconds())
				return l, nil
			}
		}
		if len(cands) > 0 && !logged {
			logged = true
			o.Logf("network: waiting up to %s for carrier on %s", c.WaitCarrier.Duration, names(cands))
		}
		now := o.Now()
		if !now.Before(deadline) {
			if c.Interface != InterfaceAuto && len(cands) > 0 {
				l := cands[0]
				o.Logf("network: warning: no carrier on %s after %s (carrier %s); trying it anyway", l.Name, c.WaitCarrier.Duration, sys.carrier(l.Name))
				return l, nil
			}
			return Link{}, notFound(c, links, sys)
		}
		if err := o.Sleep(ctx, min(o.Poll, deadline.Sub(now))); err != nil {
			return Link{}, fmt.Errorf("network: waiting for interface %s (seen: %s): %w", c.Interface, sys.describe(links), err)
		}
	}
}

func notFound(c config.Network, links []Link, sys sysfs) error {
	seen := sys.describe(links)
	switch {
	case c.Interface == InterfaceAuto:
		return fmt.Errorf("network: no Ethernet interface with carrier after %s (seen: %s); check the cable or link, or load the NIC's driver (ukdump build --module or --hostonly)", c.WaitCarrier.Duration, seen)
	case isMAC(c.Interface):
		return fmt.Errorf("network: no interface with MAC %s after %s (seen: %s); set network.interface to one of them or \"auto\"", c.Interface, c.WaitCarrier.Duration, seen)
	default:
		return fmt.Errorf("network: no interface named %s after %s (seen: %s); names in the capture kernel are the kernel's (eth0, …), not udev's: set network.interface to a MAC or \"auto\"", c.Interface, c.WaitCarrier.Duration, seen)
	}
}

func describeOne(sys sysfs, l Link) string {
	d := sys.describe([]Link{l})
	d = strings.TrimPrefix(d, l.Name+" (")
	return strings.TrimSuffix(d, ")")
}

func names(links []Link) string {
	n := make([]string, len(links))
	for i, l := range links {
		n[i] = l.Name
	}
	return strings.Join(n, ", ")
}

// RouteTo waits until the kernel has a route to host (a name is resolved
// first, and again at each try) and returns it. It tries every Poll until
// one of host's addresses has a route or ctx ends; bound it with ctx.
func RouteTo(ctx context.Context, host string, o Opts) (Route, error) {
	o = o.withDefaults()
	start := o.Now()
	var last error
	for {
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else if ips, last = o.Resolve(ctx, host); last != nil {
			last = fmt.Errorf("resolve %s: %w", host, last)
		}
		if len(ips) == 0 && last == nil {
			last = fmt.Errorf("resolve %s: no addresses", host)
		}
		for _, ip := range ips {
			r, err := o.Links.RouteGet(ip)
			if err == nil {
				dev := fmt.Sprintf("#%d", r.LinkIndex)
				if links, err := o.Links.List(); err == nil {
					for _, l := range links {
						if l.Index == r.LinkIndex {
							dev = l.Name
						}
					}
				}
				via := ""
				if r.Gw != nil {
					via = " via " + r.Gw.String()
				}
				o.Logf("network: route to %s (%s)%s dev %s src %s after %.2fs", host, ip, via, dev, r.Src, o.Now().Sub(start).Seconds())
				return r, nil
			}
			last = fmt.Errorf("route to %s: %w", ip, err)
		}
		if err := o.Sleep(ctx, o.Poll); err != nil {
			return Route{}, fmt.Errorf("network: no route to %s after %.1fs: %w (gave up: %w)", host, o.Now().Sub(start).Seconds(), last, err)
		}
	}
}
