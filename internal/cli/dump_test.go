// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/cli"
	"github.com/ukdump/ukdump/internal/dump"
	"github.com/ukdump/ukdump/internal/vmcore/vmcoretest"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.Context{Args: args, Stdout: &out, Stderr: &errb}.Execute()
	return out.String(), errb.String(), err
}

func TestCollectInfoReassemble(t *testing.T) {
	dir := t.TempDir()
	core := filepath.Join(dir, "vmcore")
	if _, err := (vmcoretest.Core{}).WriteFile(core); err != nil {
		t.Fatal(err)
	}
	kd := filepath.Join(dir, "dump.kdump")
	if _, stderr, err := run(t, "collect", "-q", "--compress", "zlib", core, kd); err != nil {
		t.Fatalf("collect = %v\n%s", err, stderr)
	}
	// OUT exists: refused without -f.
	if _, _, err := run(t, "collect", "-q", core, kd); err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("collect over an existing file = %v, want a refusal mentioning -f", err)
	}
	out, _, err := run(t, "info", "--json", kd)
	if err != nil {
		t.Fatalf("info = %v", err)
	}
	var in dump.Description
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if in.Format != "kdump" || in.Codec != "zlib" || in.KernelRelease != "6.1.0-test-amd64" || !in.Complete || in.Pages != 1024 {
		t.Errorf("info = %+v", in)
	}

	flat := filepath.Join(dir, "dump.flat")
	if _, stderr, err := run(t, "collect", "-q", "--format", "flat", "--compress", "zlib", core, flat); err != nil {
		t.Fatalf("collect --format flat = %v\n%s", err, stderr)
	}
	if out, _, _ := run(t, "info", flat); !strings.Contains(out, "reassemble") {
		t.Errorf("info on a flattened file does not say to reassemble it:\n%s", out)
	}
	re := filepath.Join(dir, "re.kdump")
	if _, stderr, err := run(t, "reassemble", flat, re); err != nil {
		t.Fatalf("reassemble = %v\n%s", err, stderr)
	}
	a, _ := os.ReadFile(kd)
	b, _ := os.ReadFile(re)
	if !bytes.Equal(a, b) {
		t.Errorf("reassembled flat dump differs from the kdump file")
	}

	elf := filepath.Join(dir, "dump.elf")
	if _, stderr, err := run(t, "collect", "-q", "--format", "elf", "-d", "0", core, elf); err != nil {
		t.Fatalf("collect --format elf = %v\n%s", err, stderr)
	}
	want, _ := os.ReadFile(core)
	if got, _ := os.ReadFile(elf); !bytes.Equal(got, want) {
		t.Errorf("collect --format elf -d 0 is not a copy of the core")
	}
	if out, _, err := run(t, "info", elf); err != nil || !strings.Contains(out, "format:    elf") {
		t.Errorf("info on ELF = %q, %v", out, err)
	}
}

func TestCollectErrors(t *testing.T) {
	dir := t.TempDir()
	core := filepath.Join(dir, "vmcore")
	if _, err := (vmcoretest.Core{}).WriteFile(core); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"collect", "-d", "32", core, filepath.Join(dir, "o1")}, "out of range"},
		{[]string{"collect", "--format", "elf", "--compress", "zlib", core, filepath.Join(dir, "o2")}, "not possible with --format elf"},
		{[]string{"collect", "--compress", "lz4", core, filepath.Join(dir, "o3")}, "lz4"},
		{[]string{"collect", "--format", "kdump", core, "-"}, "only --format flat"},
		{[]string{"collect", filepath.Join(dir, "nonexistent"), filepath.Join(dir, "o4")}, "no such file"},
		{[]string{"collect", core}, "needs IN and OUT"},
		{[]string{"info", filepath.Join(dir, "o9")}, "no such file"},
	} {
		_, _, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ukdump %q = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
	notCore := filepath.Join(dir, "text")
	os.WriteFile(notCore, []byte(strings.Repeat("hello\n", 2000)), 0o600)
	if _, _, err := run(t, "info", notCore); err == nil || !strings.Contains(err.Error(), "not a dump") {
		t.Errorf("info on a text file = %v", err)
	}
	if _, _, err := run(t, "collect"); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("collect with no args = %v, want ErrUsage", err)
	}
}
