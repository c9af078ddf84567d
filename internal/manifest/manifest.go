// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package manifest owns manifest.json, the record of one capture in its dump
// directory: what the capture writes (internal/capture) and what ukdump
// status reads back at the next boot.
package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ukdump/ukdump/internal/collect"
)

// Name is the manifest's file name in a dump directory.
const Name = "manifest.json"

// Manifest is manifest.json in the dump directory.
type Manifest struct {
	Format      string             `json:"format"`
	Compression string             `json:"compression"`
	DumpLevel   int                `json:"dump_level"`
	Pages       collect.PageCounts `json:"pages"`
	File        string             `json:"file"`
	Size        int64              `json:"size"`
	SHA256      string             `json:"sha256"`
	// SHA256Pending says the capture left the sha256 to the next boot: a
	// dump on a local disk is not read back in the capture kernel, whose
	// one CPU and minutes are the machine's downtime. FillSHA256 (ukdump
	// status, run by ukdump-report.service) computes it and clears this.
	SHA256Pending bool     `json:"sha256_pending,omitempty"`
	Complete      bool     `json:"complete"`
	Warnings      []string `json:"warnings,omitempty"`
	Error         string   `json:"error,omitempty"`
	Source        string   `json:"source"`
	MemoryBytes   int64    `json:"memory_bytes"`
	CPUs          int      `json:"cpus"`
	KernelRelease string   `json:"kernel_release"`
	Host          string   `json:"host"`
	// MachineID is the production system's /etc/machine-id, baked into
	// the image when it was built: hosts that share a name stay apart.
	MachineID     string    `json:"machine_id,omitempty"`
	CrashTime     time.Time `json:"crash_time"`
	CrashTimeFrom string    `json:"crash_time_from"`
	CaptureStart  time.Time `json:"capture_start"`
	Target        string    `json:"target"`
	Durations     Durations `json:"durations_seconds"`
	MBPerSecond   float64   `json:"mb_per_second"`
	Version       string    `json:"ukdump_version"`
	// Test marks the dump of a test crash (ukdump test).
	Test bool `json:"test,omitempty"`
}

// Durations of the capture's steps, in seconds.
type Durations struct {
	Modules float64 `json:"modules"`
	// Network is the network bring-up, for network targets.
	Network float64 `json:"network,omitempty"`
	Target  float64 `json:"target_open"`
	Copy    float64 `json:"copy"`
	Total   float64 `json:"total"`
}

// Read reads the manifest at path. A manifest padded with blanks (the
// capture reserves its room before the dump) reads as it is.
func Read(path string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Marshal is manifest.json's bytes: indented JSON and a newline.
func Marshal(m Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// FillSHA256 computes the sha256 of the dump in dir if its manifest left it
// pending (SHA256Pending), records it there and reports true. The manifest
// is replaced whole (a new file renamed over it, then fsynced), so a crash
// meanwhile leaves the old one. A dump whose size is not the manifest's
// is not hashed: it was changed after the capture.
func FillSHA256(dir string) (Manifest, bool, error) {
	path := filepath.Join(dir, Name)
	m, err := Read(path)
	if err != nil || !m.SHA256Pending || !m.Complete || m.File == "" {
		return m, false, err
	}
	if m.File != filepath.Base(m.File) {
		return m, false, fmt.Errorf("sha256 of the dump: %s names %q, not a file of %s: not hashed", Name, m.File, dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return m, false, fmt.Errorf("sha256 of %s: cannot write the dump directory (%w): run ukdump status as root", dir, err)
	}
	dump := filepath.Join(dir, m.File)
	f, err := os.Open(dump)
	if err != nil {
		return m, false, fmt.Errorf("sha256 of the dump: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return m, false, fmt.Errorf("sha256 of the dump: %w", err)
	} else if fi.Size() != m.Size {
		return m, false, fmt.Errorf("sha256 of %s: it has %d bytes, %s says %d: changed after the capture, not hashed", dump, fi.Size(), Name, m.Size)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return m, false, fmt.Errorf("sha256 of the dump: read %s: %w", dump, err)
	}
	m.SHA256, m.SHA256Pending = hex.EncodeToString(h.Sum(nil)), false
	if err := replace(path, m); err != nil {
		return m, false, fmt.Errorf("sha256 of %s is %s, but %w", dump, m.SHA256, err)
	}
	return m, true, nil
}

// replace writes m to path through a temporary file renamed over it.
func replace(path string, m Manifest) error {
	b, err := Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", Name, err)
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", Name, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("fsync the dump directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync the dump directory: %w", err)
	}
	return nil
}
