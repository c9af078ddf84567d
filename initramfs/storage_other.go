// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package initramfs

import "errors"

// dmTableTypes: device-mapper is Linux's.
func dmTableTypes(control, name string) ([]string, error) {
	return nil, errors.ErrUnsupported
}
