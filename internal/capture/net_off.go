// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build ukdump_nonet

package capture

import (
	"context"
	"errors"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/target"
)

// Network is false: the disk-only busybox (make's out/bb-disk, built with
// the ukdump_nonet tag) leaves SSH, SFTP and DHCP out, 1.8 MB that the
// capture kernel keeps for itself.
const Network = false

var errNoNetwork = errors.New("this capture image was built without network support (a disk-only busybox); rebuild it with the full busybox (ukdump build --busybox PATH/bb)")

func (c *capture) newNetTarget(tc config.Target) target.Target { return noNetTarget{tc.URL} }

type noNetTarget struct{ url string }

func (n noNetTarget) Open(context.Context) (target.Dir, error) { return nil, errNoNetwork }
func (n noNetTarget) String() string                           { return n.url }

func productionNetwork(*Env) {}
