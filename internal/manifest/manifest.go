// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package manifest owns manifest.json, the record of one capture in its dump
// directory: what the capture writes (internal/capture) and what ukdump
// status reads back at the next boot.
package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ukdump/ukdump/internal/collect"
)

// Name is the manifest's file name in a dump directory.
const Name = "manifest.json"

// Manifest is manifest.json in the dump directory.
type Manifest struct {
	Format        string             `json:"format"`
	Compression   string             `json:"compression"`
	DumpLevel     int                `json:"dump_level"`
	Pages         collect.PageCounts `json:"pages"`
	File          string             `json:"file"`
	Size          int64              `json:"size"`
	SHA256        string             `json:"sha256"`
	Complete      bool               `json:"complete"`
	Warnings      []string           `json:"warnings,omitempty"`
	Error         string             `json:"error,omitempty"`
	Source        string             `json:"source"`
	MemoryBytes   int64              `json:"memory_bytes"`
	CPUs          int                `json:"cpus"`
	KernelRelease string             `json:"kernel_release"`
	Host          string             `json:"host"`
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
