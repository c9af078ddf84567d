// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_nonet

package capture

import (
	"os"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/netup"
	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/target/s3"
)

// Network is true when this build can save over the network.
const Network = true

func (c *capture) newNetTarget(tc config.Target) target.Target {
	if tc.IsS3() {
		// The key files are in the image (ukdump build put them there).
		t := &s3.Target{URL: tc.URL, Endpoint: tc.Endpoint, Region: tc.Region,
			AccessKeyFile: c.path(tc.AccessKeyFile), SecretKeyFile: c.path(tc.SecretKeyFile),
			PartSize: int(tc.PartSize), Logf: c.log.Printf, Now: c.env.Now}
		if tc.CAFile != "" {
			t.CAFile = c.path(tc.CAFile)
		} else if _, err := os.Stat(c.path(layout.CABundlePath)); err == nil {
			t.SystemCAFile = c.path(layout.CABundlePath)
		}
		return t
	}
	// The key files are in the image: under the root, like every path here.
	s := &target.SSH{URL: tc.URL, Identity: c.path(tc.Identity), InsecureIgnoreHostKey: tc.InsecureIgnoreHostKey, Logf: c.log.Printf}
	if tc.KnownHosts != "" {
		s.KnownHosts = c.path(tc.KnownHosts)
	}
	return s
}

// productionNetwork is the capture kernel's network bring-up.
func productionNetwork(env *Env) {
	env.NetworkUp = netup.Up
	env.RouteTo = netup.RouteTo
}
