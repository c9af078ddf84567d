// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package layout

import (
	"go/parser"
	"go/token"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestToolsPinsBusybox checks that tools.go imports every busybox command
// that is not ours: without the import, go mod tidy drops its module and
// make cannot build the busybox.
func TestToolsPinsBusybox(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../tools.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var imports []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		imports = append(imports, p)
	}
	for _, p := range BusyboxPackages() {
		if !strings.HasPrefix(p, "./") && !slices.Contains(imports, p) {
			t.Errorf("tools.go does not import %s, a busybox command (BusyboxPackages)", p)
		}
	}
}

func TestBusyboxCommands(t *testing.T) {
	names := BusyboxCommands()
	if len(names) != len(BusyboxPackages()) {
		t.Fatalf("BusyboxCommands() = %q: %d names for %d packages", names, len(names), len(BusyboxPackages()))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("BusyboxCommands() = %q: %s twice (one link each)", names, n)
		}
		seen[n] = true
	}
	for _, p := range []string{InitTarget, Shell} {
		if path.Dir(p) != BinDir || !seen[path.Base(p)] {
			t.Errorf("%s is not a busybox command in %s (BusyboxCommands() = %q)", p, BinDir, names)
		}
	}
}
