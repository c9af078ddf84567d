// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package crashvm

import "errors"

// inNetNS needs Linux's network namespaces; the harness runs only there.
func inNetNS(func() error) error {
	return errors.New("crashvm: network namespaces need Linux")
}
