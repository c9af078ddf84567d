// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package incumbent

import "testing"

func TestEnable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"# a comment\nUSE_KDUMP=0\nKDUMP_COREDIR=\"/var/crash\"\n", "# a comment\nUSE_KDUMP=1\nKDUMP_COREDIR=\"/var/crash\"\n"},
		{"#USE_KDUMP=1\n", "USE_KDUMP=1\n"},
		{"USE_KDUMP=1\n", "USE_KDUMP=1\n"},
		{"KDUMP_COREDIR=/var/crash\n", "KDUMP_COREDIR=/var/crash\nUSE_KDUMP=1\n"},
	} {
		if got := string(enable([]byte(tc.in))); got != tc.want {
			t.Errorf("enable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
