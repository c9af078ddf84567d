// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpDir writes a dump directory: vmcore holding data, and m as the
// capture writes it (padded with blanks, as reserved before the dump).
func dumpDir(t *testing.T, m Manifest, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, bytes.Repeat([]byte(" "), 4096)...)
	if err := os.WriteFile(filepath.Join(dir, Name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vmcore"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFillSHA256(t *testing.T) {
	data := bytes.Repeat([]byte("dump"), 1<<18)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	pending := Manifest{File: "vmcore", Size: int64(len(data)), Complete: true, SHA256Pending: true, Host: "db1", Format: "kdump"}

	dir := dumpDir(t, pending, data)
	m, done, err := FillSHA256(dir)
	if err != nil || !done || m.SHA256 != want || m.SHA256Pending {
		t.Fatalf("FillSHA256 = %+v, %v, %v; want sha256 %s, done", m, done, err, want)
	}
	got, err := Read(filepath.Join(dir, Name))
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != want || got.SHA256Pending || got.Host != "db1" || got.Format != "kdump" || got.Size != pending.Size {
		t.Errorf("manifest.json after FillSHA256 = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, Name+".new")); !os.IsNotExist(err) {
		t.Errorf("the temporary manifest is left behind: %v", err)
	}

	for _, tt := range []struct {
		name    string
		m       Manifest
		data    []byte
		wantErr string
	}{
		{"hashed in the capture", Manifest{File: "vmcore", Size: int64(len(data)), Complete: true, SHA256: want}, data, ""},
		{"incomplete", Manifest{File: "vmcore.incomplete", Size: 10, SHA256Pending: true, Error: "disk full"}, data, ""},
		{"changed since", pending, data[:len(data)-1], "has 1048575 bytes, manifest.json says 1048576: changed after the capture"},
		{"outside the directory", Manifest{File: "../vmcore", Size: int64(len(data)), Complete: true, SHA256Pending: true}, data, `names "../vmcore", not a file of`},
		{"no dump", Manifest{File: "vmcore.gone", Size: 1, Complete: true, SHA256Pending: true}, data, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := dumpDir(t, tt.m, tt.data)
			before, _ := os.ReadFile(filepath.Join(dir, Name))
			m, done, err := FillSHA256(dir)
			if done || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("FillSHA256 = %v, %v; want not done, error %q", done, err, tt.wantErr)
			}
			if m.SHA256 != tt.m.SHA256 {
				t.Errorf("FillSHA256's manifest sha256 %q, want %q", m.SHA256, tt.m.SHA256)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, Name)); !bytes.Equal(after, before) {
				t.Errorf("manifest.json changed:\n%s", after)
			}
		})
	}
	if _, _, err := FillSHA256(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("FillSHA256 of a directory without a manifest: %v, want not exist", err)
	}
}
