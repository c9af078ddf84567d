// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package pagecodec names the per-page compression methods of the
// kdump-compressed format: what the config accepts and kdumpfile
// implements. It imports nothing of ours, so that config can use it.
package pagecodec

import "slices"

// The codecs: what makedumpfile writes with -c (zlib), -l (lzo), -p
// (snappy) and -z (zstd), and no compression.
const (
	None   = "none"
	Zlib   = "zlib"
	LZO    = "lzo"
	Snappy = "snappy"
	Zstd   = "zstd"
)

// Names lists the codecs in the order of their status bits.
var Names = []string{None, Zlib, LZO, Snappy, Zstd}

// Valid reports whether name is a codec's name.
func Valid(name string) bool { return slices.Contains(Names, name) }
