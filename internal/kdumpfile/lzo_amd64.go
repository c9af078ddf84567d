// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build amd64 && !purego

package kdumpfile

// lzoEncode is encodeGeneric in assembly (lzo_amd64.s), with the table and
// far passed in. Why assembly: LZO is the codec Debian's makedumpfile
// reads, and makedumpfile's own (liblzo2's lzo1x_1_compress, C) is what it
// is measured against. The Go encoder, tuned, stayed at 0.74-0.78x of
// liblzo's speed on kernel pages; the same algorithm in C was 1.2x the Go
// (docs/design.md, "Codecs"). No Go LZO1X library exists to take instead.
//
//go:noescape
func lzoEncode(table *[1 << lzoHashBits]uint32, base uint32, far bool, src, o []byte) (op int, ok bool)

func (c *lzoCompressor) encode(src, o []byte, base uint32) (int, bool) {
	return lzoEncode(&c.table, base, len(src) > lzoM4MaxOff, src, o)
}
