// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/layout"
)

func TestRecordStale(t *testing.T) {
	r := Record{KernelRelease: "6.1.0-57-amd64", Version: "0.1.0", Config: strings.Repeat("a", 64), Busybox: "b",
		Files: map[string]string{"/etc/ukdump/target0/known_hosts": "k1"}, Devices: []string{"target 0: UUID=1 path /var/crash"}}
	if why := r.Stale(r); why != nil {
		t.Errorf("Stale(itself) = %q", why)
	}
	now := r
	now.Config = strings.Repeat("c", 64)
	now.Files = map[string]string{"/etc/ukdump/target0/known_hosts": "k2"}
	now.KernelRelease = "6.12.117+deb12-amd64"
	why := strings.Join(r.Stale(now), "; ")
	for _, want := range []string{"kernel release changed (6.1.0-57-amd64 → 6.12.117+deb12-amd64)", "config changed (aaaaaaaaaaaa → cccccccccccc)", "/etc/ukdump/target0/known_hosts changed"} {
		if !strings.Contains(why, want) {
			t.Errorf("Stale() = %q, want %q in it", why, want)
		}
	}
}

// ReadRecord reads the record beside an image, else the one inside it, else
// tells the kernel release of its modules.
func TestReadRecord(t *testing.T) {
	dir := t.TempDir()
	rec := Record{KernelRelease: "6.1.0-test-amd64", Version: "0.1.0", Config: "c", Busybox: "b"}
	rj, _ := rec.Marshal()
	for _, c := range []Compression{Gzip, Zstd, XZ, None} {
		o := testOpts(t)
		o.Compression = c
		o.Files = append(o.Files, File{Data: rj, Dst: layout.RecordPath, Mode: 0o644})
		var buf bytes.Buffer
		if _, err := Build(&buf, o); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "ukdump-"+string(c)+".img")
		os.WriteFile(img, buf.Bytes(), 0o600)
		got, err := ReadRecord(img)
		if err != nil || got.KernelRelease != rec.KernelRelease || got.Config != "c" {
			t.Errorf("%s: ReadRecord(from the image) = %+v, %v", c, got, err)
		}
		beside := rec
		beside.Config = "beside"
		bj, _ := beside.Marshal()
		os.WriteFile(img+layout.RecordSuffix, bj, 0o644)
		if got, err := ReadRecord(img); err != nil || got.Config != "beside" {
			t.Errorf("%s: ReadRecord(beside) = %+v, %v", c, got, err)
		}
	}
	// An image without a record: the release of its modules, and ErrNoRecord.
	o := testOpts(t)
	var buf bytes.Buffer
	if _, err := Build(&buf, o); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "old.img")
	os.WriteFile(img, buf.Bytes(), 0o600)
	got, err := ReadRecord(img)
	if !errors.Is(err, ErrNoRecord) || got.KernelRelease != o.KernelVersion {
		t.Errorf("ReadRecord(no record) = %+v, %v; want release %s and ErrNoRecord", got, err, o.KernelVersion)
	}
	os.WriteFile(img, []byte("#!/bin/sh\n"), 0o600)
	if _, err := ReadRecord(img); err == nil || !strings.Contains(err.Error(), "not a capture image") {
		t.Errorf("ReadRecord(a script) = %v", err)
	}
}
