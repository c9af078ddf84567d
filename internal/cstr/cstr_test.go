// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cstr

import "testing"

func TestString(t *testing.T) {
	for _, tt := range []struct {
		b    []byte
		want string
	}{
		{nil, ""},
		{[]byte{0}, ""},
		{[]byte("Linux\x00\x00\x00"), "Linux"},
		{[]byte("no NUL"), "no NUL"},
		{[]byte("a\x00b\x00"), "a"},
	} {
		if got := String(tt.b); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.b, got, tt.want)
		}
	}
}
