// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dumplevel

import "testing"

func TestCheck(t *testing.T) {
	for level, ok := range map[int]bool{0: true, 1: true, 2: true, 31: true, 32: false, -1: false} {
		if err := Check(level); (err == nil) != ok {
			t.Errorf("Check(%d) = %v, want ok %v", level, err, ok)
		}
	}
}

func TestFromNames(t *testing.T) {
	for _, tt := range []struct {
		names []string
		want  int
		ok    bool
	}{
		{[]string{"zero", "cache", "cache-private", "user", "free"}, Max, true},
		{[]string{"none"}, 0, true},
		{[]string{"zero", "free"}, Zero | Free, true},
		{[]string{"zero", "lz4"}, 0, false},
	} {
		got, err := FromNames(tt.names)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("FromNames(%q) = %d, %v; want %d, ok %v", tt.names, got, err, tt.want, tt.ok)
		}
	}
}
