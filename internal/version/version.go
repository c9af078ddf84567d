// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package version holds ukdump's version, recorded in every manifest.
package version

// Version is ukdump's release.
const Version = "0.1.0"
