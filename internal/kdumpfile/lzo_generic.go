// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !amd64 || purego

package kdumpfile

func (c *lzoCompressor) encode(src, o []byte, base uint32) (int, bool) {
	return c.encodeGeneric(src, o, base)
}
