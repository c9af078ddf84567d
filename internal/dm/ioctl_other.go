// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package dm

import "errors"

// Device-mapper is Linux's: elsewhere Create and Remove fail unless given
// an Ioctl and a Mknod.

func ioctl(string, uint32, []byte) error { return errors.ErrUnsupported }

func mknod(string, uint32, uint32) error { return errors.ErrUnsupported }
