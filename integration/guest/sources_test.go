// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSources(t *testing.T) {
	for _, tt := range []struct {
		name, file, text string
		want             []aptSource
	}{
		{name: "one-line", file: "sources.list", text: `# comment
deb http://deb.example/debian bookworm main contrib
deb-src http://deb.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://sec.example/debian-security/ bookworm-security main # trailing
deb http://flat.example/repo ./
`, want: []aptSource{
			{URI: "http://deb.example/debian", Suite: "bookworm", Components: []string{"main", "contrib"}},
			{URI: "http://sec.example/debian-security", Suite: "bookworm-security", Components: []string{"main"}},
		}},
		{name: "deb822", file: "sources.list.d/debian.sources", text: `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.example/debian-security
Suites: bookworm-security
Components: main
 contrib

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
`, want: []aptSource{
			{URI: "http://deb.example/debian", Suite: "bookworm", Components: []string{"main"}},
			{URI: "http://deb.example/debian", Suite: "bookworm-updates", Components: []string{"main"}},
			{URI: "http://deb.example/debian-security", Suite: "bookworm-security", Components: []string{"main", "contrib"}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tt.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			// Files apt does not read are ignored.
			if err := os.WriteFile(filepath.Join(dir, "sources.list.d", "x.sources.disabled"), []byte("deb http://no/ bookworm main\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			got, err := hostSources(dir)
			if err != nil {
				t.Fatalf("hostSources(%s) = %v", dir, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("hostSources(%s) (-want, +got):\n%s", dir, d)
			}
		})
	}
}

func TestMirrorFor(t *testing.T) {
	srcs := []aptSource{
		{URI: "http://a/debian", Suite: "bookworm", Components: []string{"contrib"}},
		{URI: "http://b/debian", Suite: "bookworm", Components: []string{"main"}},
		{URI: "http://c/debian-security", Suite: "bookworm-security", Components: []string{"main"}},
	}
	if got, err := mirrorFor(srcs, "bookworm"); err != nil || got != "http://b/debian" {
		t.Errorf("mirrorFor(bookworm) = %q, %v; want http://b/debian", got, err)
	}
	if got, err := mirrorFor(srcs, "bookworm-updates"); !errors.Is(err, errNoSource) {
		t.Errorf("mirrorFor(bookworm-updates) = %q, %v; want %v", got, err, errNoSource)
	}
}

func TestCompareVersions(t *testing.T) {
	got := []string{"6.12.117+deb12-amd64", "6.1.0-10-amd64", "6.1.0-57-amd64", "6.1.0-9-amd64", "5.10.0-30-amd64"}
	slices.SortFunc(got, compareVersions)
	want := []string{"5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-57-amd64", "6.12.117+deb12-amd64"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sorted releases (-want, +got):\n%s", d)
	}
	if r, err := LatestRelease(got, "6.1."); err != nil || r != "6.1.0-57-amd64" {
		t.Errorf("LatestRelease(6.1.) = %q, %v; want 6.1.0-57-amd64", r, err)
	}
	if _, err := LatestRelease(got, "7."); !errors.Is(err, ErrNoKernel) {
		t.Errorf("LatestRelease(7.) = %v, want %v", err, ErrNoKernel)
	}
}

func TestRecipeKey(t *testing.T) {
	a := Recipe{Version: 1, Variant: "minbase", Suites: []Suite{{"bookworm", "http://x/debian"}},
		Kernels: []KernelPkg{{"6.1.0-test-amd64", "linux-image-6.1.0-test-amd64", "6.1.1-1"}}}
	b := a
	b.Kernels = []KernelPkg{{"6.1.0-testb-amd64", "linux-image-6.1.0-testb-amd64", "6.1.2-1"}}
	if a.Key() == b.Key() {
		t.Errorf("Key() is %s for two kernels", a.Key())
	}
	if k := a.Key(); len(k) != 16 || strings.Trim(k, "0123456789abcdef") != "" {
		t.Errorf("Key() = %q, want 16 hex digits", k)
	}
}

func TestBootArgs(t *testing.T) {
	o := BootOptions{Kernel: "k", Initrd: "i", Disk: "d.img", RootUUID: "u", Drive: NVMe, Append: "x=1",
		Extra: []ExtraDisk{{"s.img", SATA}, {"c.img", SCSI}, {"v.img", ""}}}
	got, err := o.qemuArgs()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(got, " ")
	for _, w := range []string{"-accel tcg", "-m 1G", "-no-reboot", "-append root=UUID=u ro console=ttyS0 crashkernel=96M x=1",
		"-drive file=d.img,format=raw,if=none,id=disk0 -device nvme,drive=disk0",
		"-device ich9-ahci,id=ahcidisk1 -drive file=s.img,format=raw,if=none,id=disk1 -device ide-hd,drive=disk1,bus=ahcidisk1.0",
		"-device virtio-scsi-pci,id=scsidisk2 -drive file=c.img,format=raw,if=none,id=disk2 -device scsi-hd,drive=disk2,bus=scsidisk2.0",
		"-drive file=v.img,format=raw,if=virtio"} {
		if !strings.Contains(s, w) {
			t.Errorf("qemuArgs() = %s; want %q in it", s, w)
		}
	}
	o.Reboot = true
	if got, err := o.qemuArgs(); err != nil || slices.Contains(got, "-no-reboot") {
		t.Errorf("qemuArgs() with Reboot = %v, %v; want no -no-reboot", got, err)
	}
	o.Drive = "ide"
	if _, err := o.qemuArgs(); err == nil {
		t.Errorf("qemuArgs() with Drive ide: no error")
	}
	o.Drive, o.Extra = "", []ExtraDisk{{"x.img", "floppy"}}
	if _, err := o.qemuArgs(); err == nil || !strings.Contains(err.Error(), "x.img") {
		t.Errorf("qemuArgs() with an extra floppy = %v, want an error naming it", err)
	}
}
