// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package config

import (
	"os"
	"path/filepath"
	"testing"
)

// The example configs in config/examples, and the default config the
// package installs, must stay valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../config/examples/*.toml")
	files = append(files, "../../config/ukdump.toml") // the package's default
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data); err != nil {
			t.Errorf("Parse(%s) = %v", f, err)
		}
	}
}
