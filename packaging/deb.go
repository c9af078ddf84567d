// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package packaging builds ukdump's Debian package (make deb) from the
// binaries make all leaves in out/ and the sources in packaging/deb.
package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ukdump/ukdump/internal/version"
)

// File is one file of the package.
type File struct {
	// Src is the file's source: relative to Options.Root, or with Bin, the
	// name of a binary in Options.BinDir.
	Src string
	// Bin says Src is one of make all's binaries.
	Bin bool
	// Path is where it is installed, relative to /.
	Path string
	// Mode is its permission bits (the owner is root:root).
	Mode fs.FileMode
	// Conffile lists it in DEBIAN/conffiles: dpkg keeps the administrator's
	// changes on upgrade and removes it only on purge.
	Conffile bool
	// Expand replaces @VERSION@, @MAINTAINER@ and @DATE@ in it.
	Expand bool
	// Gzip compresses it as gzip -9n does (man pages, the changelog).
	Gzip bool
}

// Files are the package's files. Every file under /etc is a conffile
// (Debian policy 10.7.2).
var Files = []File{
	{Src: "ukdump", Bin: true, Path: "usr/bin/ukdump", Mode: 0o755},
	// ukdump build takes its busybox from here (bb with network targets,
	// bb-disk for configs without them).
	{Src: "bb", Bin: true, Path: "usr/lib/ukdump/bb", Mode: 0o755},
	{Src: "bb-disk", Bin: true, Path: "usr/lib/ukdump/bb-disk", Mode: 0o755},
	{Src: "config/ukdump.toml", Path: "etc/ukdump/ukdump.toml", Mode: 0o644, Conffile: true},
	{Src: "config/ukdump.service", Path: "lib/systemd/system/ukdump.service", Mode: 0o644},
	{Src: "config/ukdump-report.service", Path: "lib/systemd/system/ukdump-report.service", Mode: 0o644},
	{Src: "packaging/deb/kernel-postinst", Path: "etc/kernel/postinst.d/ukdump", Mode: 0o755, Conffile: true},
	{Src: "packaging/deb/kernel-postrm", Path: "etc/kernel/postrm.d/ukdump", Mode: 0o755, Conffile: true},
	{Src: "packaging/deb/ukdump.1", Path: "usr/share/man/man1/ukdump.1.gz", Mode: 0o644, Gzip: true},
	{Src: "packaging/deb/copyright", Path: "usr/share/doc/ukdump/copyright", Mode: 0o644},
	{Src: "packaging/deb/changelog", Path: "usr/share/doc/ukdump/changelog.Debian.gz", Mode: 0o644, Expand: true, Gzip: true},
	{Src: "packaging/deb/lintian-overrides", Path: "usr/share/lintian/overrides/ukdump", Mode: 0o644},
}

// Dirs are the package's empty directories: the dumps and the images.
var Dirs = []string{"var/crash", "var/lib/ukdump"}

// Scripts are the maintainer scripts, in packaging/deb and DEBIAN/.
var Scripts = []string{"postinst", "prerm", "postrm"}

// Arch is the package's architecture: make all builds for the host, amd64.
const Arch = "amd64"

// DefaultMaintainer is the package's Maintainer unless Options.Maintainer.
const DefaultMaintainer = "ukdump authors <ukdump@users.noreply.github.com>"

// Revision is the Debian revision DefaultVersion appends.
const Revision = "1"

// Options says what Build packs and where; the zero value builds the
// default package from the current directory's tree.
type Options struct {
	// Root is the repository's top directory (default ".").
	Root string
	// BinDir holds ukdump, bb and bb-disk (default Root/out).
	BinDir string
	// OutDir receives the .deb (default Root/out).
	OutDir string
	// Version is the package's Debian version (default DefaultVersion()).
	Version string
	// Maintainer is the Maintainer field and the changelog's signer
	// (default DefaultMaintainer).
	Maintainer string
	// Epoch is every file's modification time and the changelog's date
	// (default SOURCE_DATE_EPOCH, else now): the same inputs and epoch
	// give the same .deb.
	Epoch time.Time
	// DpkgDeb is the dpkg-deb to run (default "dpkg-deb" from PATH).
	DpkgDeb string
}

// DefaultVersion is ukdump's version (internal/version) as a Debian
// version, with Revision.
func DefaultVersion() string { return UpstreamVersion(version.Version) + "-" + Revision }

var describeRE = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)

// UpstreamVersion turns a ukdump version into the upstream part of a Debian
// version: a leading v goes; `git describe` output such as
// v0.1.0-3-gabc1234-dirty becomes 0.1.0+git3.abc1234.dirty (after 0.1.0,
// before 0.1.1); a pre-release 0.2.0-rc1 becomes 0.2.0~rc1 (before 0.2.0);
// a bare commit hash abc1234 becomes 0.0~gitabc1234; any other character
// Debian does not allow becomes '.'.
func UpstreamVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if m := describeRE.FindStringSubmatch(v); m != nil {
		v = m[1] + "+git" + m[2] + "." + m[3]
		if m[4] != "" {
			v += ".dirty"
		}
	}
	v = strings.ReplaceAll(v, "-", "~")
	v = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+~", r) {
			return r
		}
		return '.'
	}, v)
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0~git" + v
	}
	return v
}

// FileName is the .deb's name for a version: ukdump_VERSION_amd64.deb
// (an epoch's colon is left out, as dpkg-name does).
func FileName(ver string) string {
	if i := strings.IndexByte(ver, ':'); i >= 0 {
		ver = ver[i+1:]
	}
	return "ukdump_" + ver + "_" + Arch + ".deb"
}

// Build writes the package into o.OutDir and returns its path. It:
//   - stages Files, Dirs and DEBIAN/ (control, conffiles, md5sums and the
//     maintainer scripts) in a temporary directory under OutDir, with
//     explicit modes and every time set to the epoch;
//   - fills in control's Version, Maintainer and Installed-Size;
//   - runs dpkg-deb --build --root-owner-group, which makes every file
//     root:root and, given SOURCE_DATE_EPOCH, the archive reproducible.
func Build(ctx context.Context, l *slog.Logger, o Options) (string, error) {
	if err := o.fill(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(o.OutDir, "deb-root-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return "", err
	}

	expand := strings.NewReplacer("@VERSION@", o.Version, "@MAINTAINER@", o.Maintainer,
		"@DATE@", o.Epoch.UTC().Format(time.RFC1123Z)).Replace
	var (
		sums      bytes.Buffer
		conffiles bytes.Buffer
		dirs      = map[string]bool{}
		kib       int64 // Installed-Size, as dpkg-gencontrol counts it
	)
	mkdirs := func(rel string) error {
		for d := rel; d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			kib++
		}
		return os.MkdirAll(filepath.Join(stage, rel), 0o755)
	}
	for _, f := range Files {
		src := filepath.Join(o.Root, f.Src)
		if f.Bin {
			src = filepath.Join(o.BinDir, f.Src)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			if f.Bin && errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%w (run make all first)", err)
			}
			return "", err
		}
		if f.Expand {
			data = []byte(expand(string(data)))
		}
		if f.Gzip {
			if data, err = gzip9n(data); err != nil {
				return "", fmt.Errorf("gzip %s: %w", src, err)
			}
		}
		if err := mkdirs(path.Dir(f.Path)); err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(stage, f.Path), data, f.Mode); err != nil {
			return "", err
		}
		kib += (int64(len(data)) + 1023) / 1024
		fmt.Fprintf(&sums, "%x  %s\n", md5.Sum(data), f.Path)
		if f.Conffile {
			fmt.Fprintf(&conffiles, "/%s\n", f.Path)
		}
	}
	for _, d := range Dirs {
		if err := mkdirs(d); err != nil {
			return "", err
		}
	}

	control, err := os.ReadFile(filepath.Join(o.Root, "packaging/deb/control"))
	if err != nil {
		return "", err
	}
	ctl := strings.NewReplacer("@VERSION@", o.Version, "@MAINTAINER@", o.Maintainer,
		"@INSTALLED_SIZE@", strconv.FormatInt(kib, 10)).Replace(string(control))
	meta := []metaFile{
		{"control", []byte(ctl), 0o644},
		{"conffiles", conffiles.Bytes(), 0o644},
		{"md5sums", sums.Bytes(), 0o644},
	}
	for _, s := range Scripts {
		data, err := os.ReadFile(filepath.Join(o.Root, "packaging/deb", s))
		if err != nil {
			return "", err
		}
		meta = append(meta, metaFile{s, data, 0o755})
	}
	if err := os.Mkdir(filepath.Join(stage, "DEBIAN"), 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Join(stage, "DEBIAN"), 0o755); err != nil {
		return "", err
	}
	for _, m := range meta {
		if err := writeFile(filepath.Join(stage, "DEBIAN", m.name), m.data, m.mode); err != nil {
			return "", err
		}
	}

	// Every directory and file gets the epoch, children before parents.
	var all []string
	if err := filepath.WalkDir(stage, func(p string, _ fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	}); err != nil {
		return "", err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if err := os.Chtimes(all[i], o.Epoch, o.Epoch); err != nil {
			return "", err
		}
	}

	out := filepath.Join(o.OutDir, FileName(o.Version))
	cmd := exec.CommandContext(ctx, o.DpkgDeb, "--build", "--root-owner-group", stage, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.Epoch.Unix(), 10))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s --build %s %s: %w: %s", o.DpkgDeb, stage, out, err, bytes.TrimSpace(msg))
	}
	st, err := os.Stat(out)
	if err != nil {
		return "", err
	}
	l.Info("built the Debian package", "path", out, "version", o.Version, "bytes", st.Size(), "installed_kib", kib)
	return out, nil
}

// metaFile is a file of DEBIAN/.
type metaFile struct {
	name string
	data []byte
	mode fs.FileMode
}

func (o *Options) fill() error {
	if o.Root == "" {
		o.Root = "."
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.Root, "out")
	}
	if o.OutDir == "" {
		o.OutDir = filepath.Join(o.Root, "out")
	}
	if o.Version == "" {
		o.Version = DefaultVersion()
	}
	if o.Maintainer == "" {
		o.Maintainer = DefaultMaintainer
	}
	if o.DpkgDeb == "" {
		o.DpkgDeb = "dpkg-deb"
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Now()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970: %w", s, err)
			}
			o.Epoch = time.Unix(n, 0)
		}
	}
	o.Epoch = o.Epoch.Truncate(time.Second)
	return nil
}

// writeFile writes data with exactly mode, whatever the umask.
func writeFile(name string, data []byte, mode fs.FileMode) error {
	if err := os.WriteFile(name, data, mode); err != nil {
		return err
	}
	return os.Chmod(name, mode)
}

// gzip9n compresses as gzip -9n: no name, no time, so the output depends
// only on the input.
func gzip9n(data []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
