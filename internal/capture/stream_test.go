// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/capture"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/target"
)

// streamTarget is a local directory whose files cannot seek, as a remote
// one's (sftp, scp): only Write, Sync and Close.
type streamTarget struct{ dir string }

func (s streamTarget) String() string { return "stream " + s.dir }

func (s streamTarget) Open(context.Context) (target.Dir, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	return streamDir{target.LocalDir(s.dir)}, nil
}

type streamDir struct{ target.Dir }

func (d streamDir) Free() (int64, error) { return 1 << 40, nil }

func (d streamDir) Create(name string) (target.File, error) {
	f, err := d.Dir.Create(name)
	if err != nil {
		return nil, err
	}
	return struct{ target.File }{f}, nil
}

// The kdump format on a target that cannot seek is saved flattened, and the
// manifest says so: the sink decides, not the kind of target.
func TestCaptureKdumpToStream(t *testing.T) {
	r := newFakeRoot(t, strings.Replace(diskConfig, "format = \"elf\"\nexclude = [\"none\"]\n", "format = \"kdump\"\n", 1), true)
	dir := filepath.Join(r.dir, "stream")
	var console bytes.Buffer
	env := r.env(&console)
	env.NewTarget = func(int, config.Target) target.Target { return streamTarget{dir} }
	o := capture.Run(env)
	if o.Result != capture.ResultSaved {
		t.Fatalf("Run = %+v; console:\n%s", o, console.String())
	}
	var m capture.Manifest
	mj, _ := os.ReadFile(filepath.Join(dir, o.Dir, "manifest.json"))
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, o.Dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m.Format != "flat" || !m.Complete || !kdumpfile.IsFlattened(f) {
		t.Errorf("manifest format %q, complete %v, flattened file %v; want a complete flat dump", m.Format, m.Complete, kdumpfile.IsFlattened(f))
	}
}
