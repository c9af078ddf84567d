// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package config

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ukdump/ukdump/"

// ourImports lists the packages of ours that the non-test Go files in dir import.
func ourImports(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Go files in %s: %q, %v", dir, files, err)
	}
	var ours []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, module) {
				ours = append(ours, p)
			}
		}
	}
	return ours
}

// TestImportsLeavesOnly checks that config imports only packages of ours
// that import nothing of ours, so that everything may import config.
func TestImportsLeavesOnly(t *testing.T) {
	for _, p := range ourImports(t, ".") {
		if deps := ourImports(t, filepath.Join("..", "..", strings.TrimPrefix(p, module))); len(deps) > 0 {
			t.Errorf("config imports %s, which imports %q; want leaf packages only", p, deps)
		}
	}
}
