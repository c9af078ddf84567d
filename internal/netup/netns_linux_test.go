// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package netup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ukdump/ukdump/internal/config"
)

// The real test: Up and RouteTo with the kernel's netlink, sysfs and a raw
// DHCP socket, in two network namespaces the test makes. A veth pair joins
// them: "srv0" (10.99.0.1/24) in the server namespace, with a DHCPv4 server
// and a TCP listener, and "eth0" in the client namespace, where Up runs with
// sysfs mounted in a private mount namespace. No packet leaves the pair; the
// namespaces vanish with the test's thread.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), as the CI has.

const (
	srvAddr    = "10.99.0.1"
	clientAddr = "10.99.0.2"
	dnsAddr    = "10.99.0.53"
)

var clientMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x99, 0x00, 0x02}

// netns is the client side of the namespaces: the test's thread is in it.
type netns struct {
	sysRoot string
	// tcp is the address of a TCP listener in the server namespace that
	// answers "hello" to each connection.
	tcp string
	// dhcpRequests counts the DHCP messages the server answered.
	dhcpRequests chan string
	// srvUp is closed when srv0 is operational. srv0 was up before eth0,
	// so it gets carrier only when Up sets eth0 up, and the kernel drops
	// what srv0 sends until its link watch has run (up to a second later).
	srvUp chan struct{}
}

// enterNetns locks the test goroutine to its thread, moves the thread into
// fresh network and mount namespaces, and builds the pair. The thread is
// never unlocked, so it ends with the test and takes the namespaces along.
func enterNetns(t *testing.T, dhcpServer bool) *netns {
	t.Helper()
	runtime.LockOSThread()
	sysRoot := t.TempDir()

	// The client namespace, and a mount namespace whose mounts stay private.
	if err := unix.Unshare(unix.CLONE_NEWNET | unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare(CLONE_NEWNET|CLONE_NEWNS) = %v (the test needs root: run it as root, as the CI does)", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("mount --make-rprivate / = %v", err)
	}
	client, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })

	// The server namespace, with the veth pair whose peer goes to the client.
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare(CLONE_NEWNET) = %v", err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "srv0"}, PeerName: "eth0", PeerHardwareAddr: clientMAC, PeerNamespace: netlink.NsFd(client.Fd())}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("ip link add srv0 type veth peer name eth0 netns client: %v", err)
	}
	srv, err := netlink.LinkByName("srv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(srv, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(srvAddr), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatalf("ip addr add %s/24 dev srv0: %v", srvAddr, err)
	}
	if err := netlink.LinkSetUp(srv); err != nil {
		t.Fatalf("ip link set srv0 up: %v", err)
	}
	n := &netns{sysRoot: sysRoot, dhcpRequests: make(chan string, 16), srvUp: make(chan struct{})}
	updates, done := make(chan netlink.LinkUpdate, 16), make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		t.Fatalf("netlink.LinkSubscribe() in the server namespace = %v", err)
	}
	t.Cleanup(func() { close(done) })
	go func() {
		for u := range updates {
			if u.Attrs().Name == "srv0" && u.Attrs().OperState == netlink.OperUp {
				close(n.srvUp)
				for range updates {
				}
				return
			}
		}
	}()
	// Sockets belong to the namespace they were made in, whichever thread
	// serves them later.
	if dhcpServer {
		s, err := server4.NewServer("srv0", &net.UDPAddr{Port: dhcpv4.ServerPort}, n.serveDHCP)
		if err != nil {
			t.Fatalf("server4.NewServer(srv0) = %v", err)
		}
		go s.Serve()
		t.Cleanup(func() { s.Close() })
	}
	ln, err := net.Listen("tcp", srvAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n.tcp = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello")
			c.Close()
		}
	}()

	// Back to the client namespace; sysfs shows the namespace of its mounter.
	if err := unix.Setns(int(client.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("setns(client) = %v", err)
	}
	if err := unix.Mount("sysfs", sysRoot, "sysfs", 0, ""); err != nil {
		t.Fatalf("mount -t sysfs sysfs %s: %v", sysRoot, err)
	}
	// Before TempDir's cleanup, which would otherwise walk into sysfs.
	t.Cleanup(func() {
		if err := unix.Unmount(sysRoot, unix.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", sysRoot, err)
		}
	})
	return n
}

// serveDHCP offers and acknowledges clientAddr, always by broadcast: the
// client has no address yet.
func (n *netns) serveDHCP(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
	default:
		return
	}
	resp, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.ParseIP(clientAddr)),
		dhcpv4.WithServerIP(net.ParseIP(srvAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(srvAddr))),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.ParseIP(srvAddr)),
		dhcpv4.WithDNS(net.ParseIP(dnsAddr)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("netns.test")),
		dhcpv4.WithLeaseTime(3600),
	)
	if err != nil {
		return
	}
	select {
	case <-n.srvUp:
	case <-time.After(5 * time.Second):
	}
	n.dhcpRequests <- fmt.Sprintf("%s from %s", m.MessageType(), m.ClientHWAddr)
	conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
}

// checkClient checks eth0's address and default route, a route to the
// server, and a TCP connection to it.
func (n *netns) checkClient(t *testing.T, o Opts) {
	t.Helper()
	eth0, err := netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if diff := cmp.Diff([]string{clientAddr + "/24"}, got); diff != "" {
		t.Errorf("eth0 addresses (-want, +got):\n%s", diff)
	}
	routes, err := netlink.RouteList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def []string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			def = append(def, r.Gw.String())
		}
	}
	if diff := cmp.Diff([]string{srvAddr}, def); diff != "" {
		t.Errorf("default routes' gateways on eth0 (-want, +got):\n%s", diff)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := RouteTo(ctx, srvAddr, o)
	if err != nil {
		t.Fatalf("RouteTo(%s) = %v", srvAddr, err)
	}
	if r.LinkIndex != eth0.Attrs().Index || r.Gw != nil || !r.Src.Equal(net.ParseIP(clientAddr)) {
		t.Errorf("RouteTo(%s) = %s, want dev #%d src %s", srvAddr, r, eth0.Attrs().Index, clientAddr)
	}
	// Through the gateway; only a route lookup, nothing is sent.
	far := "198.51.100.7"
	if r, err := RouteTo(ctx, far, o); err != nil || !r.Gw.Equal(net.ParseIP(srvAddr)) {
		t.Errorf("RouteTo(%s) = %s, %v, want via %s", far, r, err, srvAddr)
	}

	c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp", n.tcp)
	if err != nil {
		t.Fatalf("dial %s from the client namespace: %v", n.tcp, err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "hello" {
		t.Errorf("read from %s = %q, %v, want hello", n.tcp, b, err)
	}
}

func (n *netns) opts(t *testing.T) (Opts, *[]string) {
	var log []string
	return Opts{
		Root: t.TempDir(), SysRoot: n.sysRoot, Poll: 20 * time.Millisecond,
		Logf: func(format string, args ...any) {
			log = append(log, fmt.Sprintf(format, args...))
			t.Logf(format, args...)
		},
	}, &log
}

func TestNetnsDHCP(t *testing.T) {
	n := enterNetns(t, true)
	o, log := n.opts(t)

	cfg := config.Network{Interface: InterfaceAuto, Mode: ModeDHCP, WaitCarrier: config.Duration{Duration: 10 * time.Second}, DHCPTimeout: config.Duration{Duration: time.Second}, DHCPRetries: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Up(ctx, cfg, o)
	if err != nil {
		t.Fatalf("Up(%+v) = %v", cfg, err)
	}
	if diff := cmp.Diff(Result{Interface: "eth0", Address: clientAddr + "/24", Gateway: srvAddr}, res, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Took" }, cmp.Ignore())); diff != "" {
		t.Errorf("Up() result (-want, +got):\n%s", diff)
	}
	if res.Took <= 0 || res.Took > 20*time.Second {
		t.Errorf("Up().Took = %s, want between 0 and 20s", res.Took)
	}
	b, err := os.ReadFile(filepath.Join(o.Root, "etc", "resolv.conf"))
	if want := "# written by ukdump\ndomain netns.test\nnameserver " + dnsAddr + "\n"; err != nil || string(b) != want {
		t.Errorf("resolv.conf = %q, %v, want %q", b, err, want)
	}
	all := strings.Join(*log, "\n")
	for _, w := range []string{
		"network: chose eth0 (02:00:00:99:00:02, virtual, carrier 1)",
		"network: eth0: DHCP lease from " + srvAddr + ": " + clientAddr + "/24, router " + srvAddr + ", dns " + dnsAddr + ", domain netns.test, for 1h0m0s",
		"network: up on eth0: " + clientAddr + "/24, gateway " + srvAddr,
	} {
		if !strings.Contains(all, w) {
			t.Errorf("log = %q, want it to contain %q", all, w)
		}
	}
	var seen []string
	for len(n.dhcpRequests) > 0 {
		seen = append(seen, <-n.dhcpRequests)
	}
	if diff := cmp.Diff([]string{"DISCOVER from " + clientMAC.String(), "REQUEST from " + clientMAC.String()}, seen); diff != "" {
		t.Errorf("DHCP server answered (-want, +got):\n%s", diff)
	}
	if res.Took > 500*time.Millisecond {
		t.Errorf("Up().Took = %s, want well under a second (a DHCP message lost?)", res.Took)
	}
	n.checkClient(t, o)
}

func TestNetnsStatic(t *testing.T) {
	n := enterNetns(t, false)
	o, _ := n.opts(t)
	cfg := config.Network{Interface: strings.ToUpper(clientMAC.String()), Mode: ModeStatic, Address: clientAddr + "/24", Gateway: srvAddr, DNS: []string{dnsAddr}, WaitCarrier: config.Duration{Duration: 10 * time.Second}}
	res, err := Up(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("Up(%+v) = %v", cfg, err)
	}
	if res.Interface != "eth0" || res.Address != clientAddr+"/24" || res.Gateway != srvAddr {
		t.Errorf("Up(%+v) = %+v, want eth0 %s/24 via %s", cfg, res, clientAddr, srvAddr)
	}
	n.checkClient(t, o)

	// Again: an address and route that exist already are not an error.
	if _, err := Up(context.Background(), cfg, o); err != nil {
		t.Errorf("Up(%+v) again = %v", cfg, err)
	}
}

func TestNetnsDHCPNoServer(t *testing.T) {
	n := enterNetns(t, false)
	o, _ := n.opts(t)
	cfg := config.Network{Interface: "eth0", WaitCarrier: config.Duration{Duration: 10 * time.Second}, DHCPTimeout: config.Duration{Duration: 100 * time.Millisecond}, DHCPRetries: 1}
	start := time.Now()
	_, err := Up(context.Background(), cfg, o)
	if err == nil || !strings.Contains(err.Error(), "network: DHCPv4 on eth0 (first wait 100ms, 1 retries") {
		t.Fatalf("Up(%+v) without a server = %v, want a DHCPv4 error", cfg, err)
	}
	// 100ms, then 200ms: well under a second.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Up(%+v) without a server took %s, want about 0.3s", cfg, took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := RouteTo(ctx, "198.51.100.7", o); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RouteTo(198.51.100.7) without routes = %v, want a deadline error", err)
	}
}
