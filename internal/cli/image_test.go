package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/initramfs"
	"github.com/ukdump/ukdump/internal/layout"
)

// ukdump load with no flags loads the running kernel's image, building it
// first when it is missing or stale, and only then.
func TestLoadDefaultImage(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "0")
	e := newBuildEnv(t, validConfig)
	rel := strings.TrimPrefix(filepath.Base(s.kernel), "vmlinuz-")
	imgDir := t.TempDir()
	load := func(args ...string) (string, string, error) {
		c := s.context(append([]string{"load"}, args...)...)
		c.ConfigPath, c.ImageDir, c.Busybox = e.config, imgDir, e.busybox
		return run(t, c)
	}
	img := filepath.Join(imgDir, "ukdump-"+rel+".img")

	stdout, stderr, err := load()
	if err != nil {
		t.Fatalf("load = %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "rebuilding "+img+": there is none for kernel "+rel) || !strings.Contains(stdout, "ukdump build: wrote "+img) {
		t.Errorf("the first load did not build the missing image:\n%s", stdout)
	}
	if len(s.calls) != 1 || s.calls[0].Initrd != img {
		t.Fatalf("kexec calls = %+v, want one of %s", s.calls, img)
	}
	if rec, err := initramfs.ReadRecord(img); err != nil || rec.KernelRelease != rel {
		t.Errorf("the image's record = %+v, %v", rec, err)
	}

	stdout, _, err = load()
	if err != nil || strings.Contains(stdout, "rebuilding") {
		t.Errorf("a second load = %v, rebuilt a current image:\n%s", err, stdout)
	}
	os.WriteFile(e.config, []byte("# changed\n"+validConfig), 0o644)
	stdout, _, err = load()
	if err != nil || !strings.Contains(stdout, "rebuilding "+img+": config changed") {
		t.Errorf("a load after the config changed = %v:\n%s", err, stdout)
	}
	stdout, _, err = load("--no-rebuild")
	if err != nil || strings.Contains(stdout, "rebuilding") {
		t.Errorf("load --no-rebuild = %v:\n%s", err, stdout)
	}
}

// An image of another kernel release is refused, with the command that
// fixes it; --force loads it anyway.
func TestLoadRefusesOtherRelease(t *testing.T) {
	s := newFakeSystem(t, 256<<20, "0")
	rel := strings.TrimPrefix(filepath.Base(s.kernel), "vmlinuz-")
	rec, _ := initramfs.Record{KernelRelease: "5.10.0-99-amd64"}.Marshal()
	os.WriteFile(s.initrd+layout.RecordSuffix, rec, 0o644)
	_, _, err := run(t, s.context("load", "--kernel", s.kernel, "--initrd", s.initrd))
	for _, want := range []string{"holds the modules of kernel 5.10.0-99-amd64", "is " + rel, "ukdump build --kver " + rel + " -o " + s.initrd, "--force"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load of another release's image = %v, want %q in it", err, want)
		}
	}
	if len(s.calls) != 0 {
		t.Errorf("kexec_file_load called for a refused image")
	}
	_, stderr, err := run(t, s.context("load", "--kernel", s.kernel, "--initrd", s.initrd, "--force"))
	if err != nil || len(s.calls) != 1 || !strings.Contains(stderr, "loading anyway (--force)") {
		t.Errorf("load --force = %v (%d calls), stderr %q", err, len(s.calls), stderr)
	}
}
