// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package netup

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkLinks does the Links operations with vishvananda/netlink. A zero
// netlink.Handle opens a socket per call, in the calling thread's network
// namespace.
type netlinkLinks struct{ h *netlink.Handle }

func defaultLinks() Links { return netlinkLinks{h: &netlink.Handle{}} }

func (n netlinkLinks) List() ([]Link, error) {
	ls, err := n.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netlink RTM_GETLINK: %w", err)
	}
	links := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		links = append(links, Link{
			Name: a.Name, Index: a.Index, MAC: a.HardwareAddr,
			Loopback: a.Flags&net.FlagLoopback != 0,
			Ether:    a.EncapType == "ether",
		})
	}
	return links, nil
}

func (n netlinkLinks) link(l Link) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: l.Name, Index: l.Index}}
}

func (n netlinkLinks) SetUp(l Link) error {
	if err := n.h.LinkSetUp(n.link(l)); err != nil {
		return fmt.Errorf("netlink: ip link set %s up: %w", l.Name, err)
	}
	return nil
}

func (n netlinkLinks) AddrReplace(l Link, addr *net.IPNet) error {
	if err := n.h.AddrReplace(n.link(l), &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("netlink: ip addr replace %s dev %s: %w", addr, l.Name, err)
	}
	return nil
}

func (n netlinkLinks) RouteReplace(r Route) error {
	nr := &netlink.Route{LinkIndex: r.LinkIndex, Dst: r.Dst, Gw: r.Gw, Src: r.Src}
	if r.Gw == nil {
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	if err := n.h.RouteReplace(nr); err != nil {
		return fmt.Errorf("netlink: ip route replace %s: %w", r, err)
	}
	return nil
}

func (n netlinkLinks) RouteGet(dst net.IP) (Route, error) {
	rs, err := n.h.RouteGet(dst)
	if err != nil {
		return Route{}, fmt.Errorf("netlink: ip route get %s: %w", dst, err)
	}
	if len(rs) == 0 {
		return Route{}, fmt.Errorf("netlink: ip route get %s: %w", dst, unix.ENETUNREACH)
	}
	r := rs[0]
	return Route{Dst: r.Dst, Gw: r.Gw, Src: r.Src, LinkIndex: r.LinkIndex}, nil
}

// defaultDHCP runs DISCOVER/OFFER/REQUEST/ACK on a raw socket bound to the
// link (it needs no address yet).
func defaultDHCP(ctx context.Context, l Link, timeout time.Duration, retries int) (Lease, error) {
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(timeout), nclient4.WithRetry(retries + 1)}
	if len(l.MAC) > 0 {
		opts = append(opts, nclient4.WithHWAddr(l.MAC))
	}
	c, err := nclient4.New(l.Name, opts...)
	if err != nil {
		return Lease{}, fmt.Errorf("open a DHCP socket on %s: %w", l.Name, err)
	}
	defer c.Close()
	lease, err := c.Request(ctx, dhcpv4.WithRequestedOptions(leaseOptions...))
	if err != nil {
		return Lease{}, err
	}
	return leaseFrom(lease.ACK), nil
}
