// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build tools

// This file lists the u-root commands and build tools that go into the capture
// busybox, so that go.mod and go.sum pin them (u-root's dependencies.go idiom).
// The busybox's commands are internal/layout's; its test fails if one of them
// is not imported here.
package tools

import (
	_ "github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	_ "github.com/pkg/sftp"
	_ "github.com/u-root/gobusybox/src/cmd/makebb"
	_ "github.com/u-root/u-root/cmds/core/cat"
	_ "github.com/u-root/u-root/cmds/core/cp"
	_ "github.com/u-root/u-root/cmds/core/df"
	_ "github.com/u-root/u-root/cmds/core/dmesg"
	_ "github.com/u-root/u-root/cmds/core/free"
	_ "github.com/u-root/u-root/cmds/core/gosh"
	_ "github.com/u-root/u-root/cmds/core/ip"
	_ "github.com/u-root/u-root/cmds/core/ls"
	_ "github.com/u-root/u-root/cmds/core/mkdir"
	_ "github.com/u-root/u-root/cmds/core/mount"
	_ "github.com/u-root/u-root/cmds/core/mv"
	_ "github.com/u-root/u-root/cmds/core/ps"
	_ "github.com/u-root/u-root/cmds/core/rm"
	_ "github.com/u-root/u-root/cmds/core/sync"
	_ "github.com/u-root/u-root/cmds/core/umount"
	_ "github.com/u-root/u-root/cmds/core/uname"
	_ "github.com/u-root/u-root/pkg/dhclient"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/crypto/ssh/knownhosts"
)
