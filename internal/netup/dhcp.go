// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package netup

import (
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// leaseOptions are the options asked of the DHCP server besides the default
// subnet mask, router, domain name and name servers.
var leaseOptions = []dhcpv4.OptionCode{dhcpv4.OptionClasslessStaticRoute, dhcpv4.OptionDNSDomainSearchList}

// leaseFrom turns a DHCPACK into a Lease.
func leaseFrom(ack *dhcpv4.DHCPv4) Lease {
	mask := ack.SubnetMask()
	if mask == nil {
		// No subnet mask: the most restrictive one, as u-root's dhclient does.
		mask = net.CIDRMask(32, 32)
	}
	l := Lease{
		Address:  &net.IPNet{IP: ack.YourIPAddr.To4(), Mask: mask},
		Server:   ack.ServerIdentifier(),
		Routers:  ack.Router(),
		DNS:      ack.DNS(),
		Domain:   ack.DomainName(),
		Duration: ack.IPAddressLeaseTime(0),
	}
	if l.Server == nil && !ack.ServerIPAddr.IsUnspecified() {
		l.Server = ack.ServerIPAddr
	}
	if ack.YourIPAddr == nil || ack.YourIPAddr.IsUnspecified() {
		l.Address = nil
	}
	for _, r := range ack.ClasslessStaticRoute() {
		l.Routes = append(l.Routes, Route{Dst: r.Dest, Gw: r.Router})
	}
	if s := ack.DomainSearch(); s != nil {
		l.Search = s.Labels
	}
	return l
}
