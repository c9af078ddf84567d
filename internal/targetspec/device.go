// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package targetspec

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The kinds of a device spec.
const (
	KindUUID     = "UUID"     // the filesystem's UUID
	KindLabel    = "LABEL"    // the filesystem's label
	KindPartUUID = "PARTUUID" // the GPT partition GUID or MBR "xxxxxxxx-NN"
	KindPath     = "PATH"     // a /dev/… path
)

// Device is a parsed device spec.
type Device struct {
	// Kind is KindUUID, KindLabel, KindPartUUID or KindPath.
	Kind string
	// Value is what to match: unquoted, and for KindPath the cleaned path.
	Value string
}

// ParseDevice checks a device spec and splits it into kind and value:
// UUID=…, LABEL=…, PARTUUID=… (the value may be double-quoted as blkid
// prints it; UUID and PARTUUID are hex digits and dashes) or a /dev/… path.
func ParseDevice(spec string) (Device, error) {
	if strings.HasPrefix(spec, "/dev/") {
		p := filepath.Clean(spec)
		if len(spec) == len("/dev/") || !strings.HasPrefix(p, "/dev/") {
			return Device{}, fmt.Errorf("device spec %q names no device (want e.g. /dev/vdb)", spec)
		}
		return Device{Kind: KindPath, Value: p}, nil
	}
	kind, value, ok := strings.Cut(spec, "=")
	if !ok {
		return Device{}, fmt.Errorf("device spec %q is not UUID=…, LABEL=…, PARTUUID=… or a /dev/… path", spec)
	}
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	switch kind {
	case KindUUID, KindPartUUID, KindLabel:
	default:
		return Device{}, fmt.Errorf("device spec %q: unknown kind %q (want UUID, LABEL, PARTUUID or a /dev/… path)", spec, kind)
	}
	if value == "" {
		eg := "LABEL=crashdump"
		switch kind {
		case KindUUID:
			eg = "UUID=0a1b2c3d-…, as blkid prints it"
		case KindPartUUID:
			eg = "PARTUUID=…, as blkid prints it"
		}
		return Device{}, fmt.Errorf("device spec %q: empty %s (e.g. %s)", spec, kind, eg)
	}
	if kind != KindLabel && strings.Trim(strings.ToLower(value), "0123456789abcdef-") != "" {
		return Device{}, fmt.Errorf("device spec %q: %s must be hex digits and dashes", spec, kind)
	}
	return Device{Kind: kind, Value: value}, nil
}

// String describes d for messages: LABEL="crashdump", path /dev/vdb.
func (d Device) String() string {
	if d.Kind == KindPath {
		return "path " + d.Value
	}
	return fmt.Sprintf("%s=%q", d.Kind, d.Value)
}
