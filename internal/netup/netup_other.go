// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"
)

// errUnsupported is returned by the default Links and DHCP off Linux.
var errUnsupported = fmt.Errorf("network bring-up on %s: %w", runtime.GOOS, errors.ErrUnsupported)

type noLinks struct{}

func defaultLinks() Links { return noLinks{} }

func (noLinks) List() ([]Link, error)              { return nil, errUnsupported }
func (noLinks) SetUp(Link) error                   { return errUnsupported }
func (noLinks) AddrReplace(Link, *net.IPNet) error { return errUnsupported }
func (noLinks) RouteReplace(Route) error           { return errUnsupported }
func (noLinks) RouteGet(net.IP) (Route, error)     { return Route{}, errUnsupported }

func defaultDHCP(context.Context, Link, time.Duration, int) (Lease, error) {
	return Lease{}, errUnsupported
}
