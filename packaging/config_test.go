// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package packaging

import (
	"os"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/config"
)

// TestDefaultConfig checks config/ukdump.toml, the package's
// /etc/ukdump/ukdump.toml, with the config parser: every key known, every
// value valid. Its target names no device (the builder's own file system,
// resolved by ukdump build); a device is put in for the parse, so that the
// test does not depend on that resolution.
func TestDefaultConfig(t *testing.T) {
	data, err := os.ReadFile("../config/ukdump.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if n := strings.Count(text, "\n[[target]]\n"); n != 1 {
		t.Fatalf("config/ukdump.toml has %d [[target]] tables, want 1", n)
	}
	text = strings.Replace(text, "\n[[target]]\n", "\n[[target]]\ndevice = \"UUID=0b5d3e4e-2f6a-4c1e-9d7b-3a8f5c2e1d90\"\n", 1)
	c, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("config.Parse(config/ukdump.toml with a device) = %v", err)
	}
	if len(c.Targets) != 1 || c.Targets[0].Path != "/var/crash" || c.Targets[0].IsNetwork() {
		t.Errorf("targets = %+v, want one disk target with path /var/crash", c.Targets)
	}
	if c.Collect.Format != "kdump" || c.Collect.Compression != config.DefaultCompression || c.Collect.CPUs != config.DefaultCPUs {
		t.Errorf("collect = %+v, want format kdump with the default compression (%s) and CPUs", c.Collect, config.DefaultCompression)
	}
	if c.Retention.Keep != 3 || c.Retention.MinFree != 1<<30 {
		t.Errorf("retention = %+v, want keep 3, min_free 1GiB (the dumps share the root file system)", c.Retention)
	}
}
