// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build interop

package interop

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/cli"
	"github.com/ukdump/ukdump/internal/collect"
	"github.com/ukdump/ukdump/internal/dmesg"
	"github.com/ukdump/ukdump/internal/dump"
)

// TestDmesg compares ukdump dmesg with makedumpfile --dump-dmesg, byte for
// byte, on the e2e ELF core and on kdump-compressed files collect writes
// from it.
func TestDmesg(t *testing.T) {
	if _, err := exec.LookPath("makedumpfile"); err != nil {
		t.Fatalf("makedumpfile not found (%v): run scripts/deps.sh", err)
	}
	for _, core := range []string{vmcorePath, vmcore612Path} {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(core))), func(t *testing.T) { testDmesg(t, openELFAt(t, core)) })
	}
}

func testDmesg(t *testing.T, e *elfCore) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts *collect.Options // nil: the ELF core itself
	}{
		{name: "elf"},
		{name: "kdump-zlib-d1", opts: &collect.Options{Format: collect.FormatKdump, Codec: "zlib", DumpLevel: 1}},
		{name: "kdump-lzo-d0", opts: &collect.Options{Format: collect.FormatKdump, Codec: "lzo", DumpLevel: 0}},
		{name: "kdump-zlib-d31", opts: &collect.Options{Format: collect.FormatKdump, Codec: "zlib", DumpLevel: 31}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := e.path
			if tc.opts != nil {
				path = filepath.Join(dir, tc.name+".dump")
				e.collectFileOpts(t, path, *tc.opts)
			}
			d, err := dump.Open(path)
			if err != nil {
				t.Fatalf("dump.Open(%s) = %v", path, err)
			}
			defer d.Close()
			k, err := d.Kernel()
			if err != nil {
				t.Fatalf("Kernel() of %s = %v", path, err)
			}
			got, err := dmesg.Read(k)
			if err != nil {
				t.Fatalf("dmesg.Read(%s) = %v", path, err)
			}
			out := filepath.Join(dir, tc.name+".makedumpfile.txt")
			run(t, "makedumpfile", "--dump-dmesg", path, out)
			want := readFile(t, out)
			if !bytes.Equal(got, want) {
				t.Errorf("dmesg.Read(%s) differs from makedumpfile --dump-dmesg (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
			}
			if !bytes.Contains(got, []byte("sysrq triggered crash")) {
				t.Errorf("dmesg.Read(%s): no %q in the log", path, "sysrq triggered crash")
			}

			var stdout, stderr bytes.Buffer
			c := cli.Context{Args: []string{"dmesg", path}, Stdout: &stdout, Stderr: &stderr}
			if err := c.Execute(); err != nil {
				t.Fatalf("ukdump dmesg %s = %v (stderr %s)", path, err, stderr.String())
			}
			if !bytes.Equal(stdout.Bytes(), want) {
				t.Errorf("ukdump dmesg %s: output differs from makedumpfile --dump-dmesg", path)
			}
		})
	}
}

// TestDmesgFlattened checks that ukdump dmesg reads a flattened dump.
func TestDmesgFlattened(t *testing.T) {
	e := openELF(t)
	path := filepath.Join(t.TempDir(), "flat.dump")
	e.collectFileOpts(t, path, collect.Options{Format: collect.FormatFlat, Codec: "zlib", DumpLevel: 1})
	var stdout, stderr bytes.Buffer
	if err := (cli.Context{Args: []string{"dmesg", path}, Stdout: &stdout, Stderr: &stderr}).Execute(); err != nil {
		t.Fatalf("ukdump dmesg (flattened) = %v", err)
	}
	want := filepath.Join(t.TempDir(), "elf.txt")
	run(t, "makedumpfile", "--dump-dmesg", e.path, want)
	if !bytes.Equal(stdout.Bytes(), readFile(t, want)) {
		t.Errorf("ukdump dmesg (flattened) differs from makedumpfile --dump-dmesg of the ELF")
	}
}
