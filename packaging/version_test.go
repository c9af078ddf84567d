// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package packaging

import (
	"os/exec"
	"testing"
)

func TestUpstreamVersion(t *testing.T) {
	_, err := exec.LookPath("dpkg")
	haveDpkg := err == nil
	for _, tt := range []struct{ in, want string }{
		{"0.1.0", "0.1.0"},
		{"v0.1.0", "0.1.0"},
		{"v0.1.0-3-gabc1234", "0.1.0+git3.abc1234"},
		{"v0.1.0-3-gabc1234-dirty", "0.1.0+git3.abc1234.dirty"},
		{"0.2.0-rc1", "0.2.0~rc1"},
		{"abc1234", "0.0~gitabc1234"},
		{"1.0_beta", "1.0.beta"},
	} {
		if got := UpstreamVersion(tt.in); got != tt.want {
			t.Errorf("UpstreamVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !haveDpkg {
			continue
		}
		if out, err := exec.Command("dpkg", "--validate-version", UpstreamVersion(tt.in)+"-1").CombinedOutput(); err != nil {
			t.Errorf("dpkg --validate-version %s-1 = %v: %s", UpstreamVersion(tt.in), err, out)
		}
	}
	if !haveDpkg {
		t.Fatal("no dpkg to validate and compare the versions with (Debian has it; run scripts/deps.sh)")
	}
	// The ordering the conversion promises.
	for _, pair := range [][2]string{{"0.1.0", "0.1.0-3-gabc1234"}, {"0.1.0-3-gabc1234", "0.1.1"}, {"0.2.0-rc1", "0.2.0"}} {
		a, b := UpstreamVersion(pair[0]), UpstreamVersion(pair[1])
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg --compare-versions %s lt %s = %v, want true", a, b, err)
		}
	}
}
