// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// RecipeVersion names the build steps of Root. Change it whenever they
// change: it is part of the cache key, so every cached tree is rebuilt.
const RecipeVersion = 1

// Suites are the apt suites of the guest, each taken from the host's apt
// sources. Plain bookworm alone gives an old kernel point release; the host's
// kernels come from the other two.
var Suites = []string{"bookworm", "bookworm-updates", "bookworm-security"}

// BasePackages are installed in every guest besides the kernels: systemd as
// init, udev, kmod, e2fsprogs, initramfs-tools (with zstd, its default
// compressor) to make each kernel's initrd inside the guest, and Debian's
// kernel metapackage.
var BasePackages = []string{"systemd-sysv", "udev", "kmod", "e2fsprogs", "initramfs-tools", "zstd", "linux-image-amd64"}

// Hostname is the guest's host name.
const Hostname = "ukdump-guest"

// RootOptions configures Root. The zero value builds the default guest.
type RootOptions struct {
	// CacheDir holds the cached trees. Default: DefaultCacheDir().
	CacheDir string
	// EtcApt is the apt configuration whose sources name the mirrors.
	// Default: /etc/apt.
	EtcApt string
	// BootDir is where the host's kernels are. Default: /boot.
	BootDir string
	// Releases are the kernel releases installed in the guest, each one
	// that BootDir holds and a Debian package installed on the host; the
	// guest gets the same package at the same version. Default: every
	// vmlinuz-RELEASE in BootDir.
	Releases []string
	// Packages are installed besides BasePackages and the kernels.
	Packages []string
	// Log receives one line per build step. Default: discard.
	Log *slog.Logger
}

// DefaultCacheDir returns $UKDUMP_TEST_CACHE, else /var/cache/ukdump-test:
// outside the repository, so a clean tree keeps its guest.
func DefaultCacheDir() string {
	if d := os.Getenv("UKDUMP_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/ukdump-test"
}

// A Recipe is everything a guest tree is built from; its hash is the cache key.
type Recipe struct {
	Version  int         // RecipeVersion
	Variant  string      // debootstrap --variant
	Suites   []Suite     // in Suites order
	Packages []string    // apt-get install arguments, NAME or NAME=VERSION
	Kernels  []KernelPkg // the host's kernels, installed at the host's versions
	Extra    []string    `json:",omitempty"` // RootOptions.Packages
}

// A Suite is an apt suite and the mirror it comes from.
type Suite struct {
	Name string
	URI  string
}

// A KernelPkg is a kernel release and the package that installed it.
type KernelPkg struct {
	Release string
	Package string
	Version string
}

// Key returns the cache key of r: 16 hex digits of the SHA-256 of its JSON.
func (r Recipe) Key() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// Root returns the directory of a cached Debian 12 guest root file system
// built from opts, building it first if the cache has none. The directory
// is shared: treat it as read-only (Disk works on a copy).
//
// The tree is the guest as an installed system would have it, minus the
// network:
//   - debootstrap --variant=minbase of bookworm from the host's mirror;
//   - the sources of bookworm, bookworm-updates and bookworm-security (the
//     host's URIs for each), apt-get dist-upgrade;
//   - BasePackages, the host's kernel packages at the host's versions
//     (linux-image-amd64 too, when the host has it), opts.Packages, each
//     kernel's initrd made inside the tree by initramfs-tools;
//   - host name ukdump-guest, an empty machine-id (set at first boot), no
//     network configuration, root without a password and logged in
//     automatically on the serial console ttyS0; /etc/fstab is written by Disk.
//
// A build runs in a temporary directory beside the cache entry, under a lock,
// and is renamed into place only when complete: a killed build leaves no
// cache entry, and the next build removes its remains.
func Root(ctx context.Context, opts RootOptions) (string, error) {
	o := opts.withDefaults()
	if err := needTools("debootstrap", "unshare", "chroot", "dpkg-query"); err != nil {
		return "", err
	}
	rec, err := o.recipe()
	if err != nil {
		return "", err
	}
	key := rec.Key()
	final := filepath.Join(o.CacheDir, "guest-"+key)
	tree := filepath.Join(final, "tree")
	if _, err := os.Stat(filepath.Join(final, "recipe.json")); err == nil {
		o.Log.Info("guest root: cached", "dir", tree)
		return tree, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(final + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, "recipe.json")); err == nil {
		o.Log.Info("guest root: cached (built by another process)", "dir", tree)
		return tree, nil
	}
	stale, _ := filepath.Glob(final + ".tmp-*") // only a malformed pattern fails
	for _, d := range stale {
		o.Log.Info("guest root: removing a killed build", "dir", d)
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(o.CacheDir, "guest-"+key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // after the rename, nothing is left to remove
	start := time.Now()
	if err := build(ctx, o, rec, tmp); err != nil {
		// Keep the log of a failed build beside the cache; the tree goes.
		failed := final + ".failed.log"
		if err := os.Rename(filepath.Join(tmp, "build.log"), failed); err != nil {
			failed = err.Error()
		}
		return "", fmt.Errorf("guest root %s (log: %s): %w", key, failed, err)
	}
	os.Remove(final + ".failed.log") // a previous failure's, if any; none is fine
	// On the disk before it is in place: a host crash must not leave a
	// complete-looking entry with files that never reached the disk.
	if err := (runner{log: o.Log}).run(ctx, nil, nil, "sync", "--file-system", tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	o.Log.Info("guest root: built", "dir", tree, "took", time.Since(start).Round(time.Second))
	return tree, nil
}

func (o RootOptions) withDefaults() RootOptions {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.EtcApt == "" {
		o.EtcApt = "/etc/apt"
	}
	if o.BootDir == "" {
		o.BootDir = "/boot"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// recipe resolves opts against the host: the mirrors from its apt sources,
// the kernels from its /boot and dpkg database.
func (o RootOptions) recipe() (Recipe, error) {
	srcs, err := hostSources(o.EtcApt)
	if err != nil {
		return Recipe{}, err
	}
	rec := Recipe{Version: RecipeVersion, Variant: "minbase", Extra: o.Packages}
	for _, s := range Suites {
		uri, err := mirrorFor(srcs, s)
		if err != nil {
			return Recipe{}, fmt.Errorf("%s: %w", o.EtcApt, err)
		}
		rec.Suites = append(rec.Suites, Suite{Name: s, URI: uri})
	}
	rels := o.Releases
	if len(rels) == 0 {
		if rels, err = HostReleases(o.BootDir); err != nil {
			return Recipe{}, err
		}
	}
	r := runner{log: o.Log}
	for _, rel := range rels {
		k, err := hostKernel(r, o.BootDir, rel)
		if err != nil {
			return Recipe{}, err
		}
		rec.Kernels = append(rec.Kernels, k)
	}
	for _, p := range BasePackages {
		if v, ok := hostVersion(r, p); ok && strings.HasPrefix(p, "linux-image-") {
			p += "=" + v // the metapackage at the host's version, so it pulls no newer kernel
		}
		rec.Packages = append(rec.Packages, p)
	}
	for _, k := range rec.Kernels {
		rec.Packages = append(rec.Packages, k.Package+"="+k.Version)
	}
	rec.Packages = append(rec.Packages, o.Packages...)
	return rec, nil
}

// HostReleases returns the releases of the kernels in bootDir
// (vmlinuz-RELEASE), oldest first.
func HostReleases(bootDir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return nil, err
	}
	var rels []string
	for _, p := range m {
		rels = append(rels, strings.TrimPrefix(filepath.Base(p), "vmlinuz-"))
	}
	if len(rels) == 0 {
		return nil, fmt.Errorf("no vmlinuz-* in %s", bootDir)
	}
	slices.SortFunc(rels, compareVersions)
	return rels, nil
}

// hostKernel finds the host package that installed bootDir/vmlinuz-release.
func hostKernel(r runner, bootDir, release string) (KernelPkg, error) {
	path := filepath.Join(bootDir, "vmlinuz-"+release)
	if _, err := os.Stat(path); err != nil {
		return KernelPkg{}, err
	}
	out, err := r.output(context.Background(), nil, nil, "dpkg-query", "-S", path)
	if err != nil {
		return KernelPkg{}, fmt.Errorf("%s is from no Debian package, so the guest cannot install it: %w", path, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, p, ok := strings.Cut(line, ": ")
		if !ok || p != path || strings.Contains(pkg, " ") {
			continue // "diversion by …" lines
		}
		pkg, _, _ = strings.Cut(pkg, ":") // an architecture qualifier
		v, ok := hostVersion(r, pkg)
		if !ok {
			return KernelPkg{}, fmt.Errorf("dpkg-query: %s (owner of %s) is not installed", pkg, path)
		}
		return KernelPkg{Release: release, Package: pkg, Version: v}, nil
	}
	return KernelPkg{}, fmt.Errorf("dpkg-query -S %s: no owner in %q", path, out)
}

// hostVersion returns the version of pkg if the host has it installed.
func hostVersion(r runner, pkg string) (string, bool) {
	out, err := r.output(context.Background(), nil, nil, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg)
	if err != nil {
		return "", false // not known to dpkg at all
	}
	st, v, _ := strings.Cut(string(out), " ")
	return v, st == "installed"
}

// build makes the tree in tmp/tree, logging commands to tmp/build.log, and
// writes tmp/recipe.json last.
func build(ctx context.Context, o RootOptions, rec Recipe, tmp string) error {
	logf, err := os.Create(filepath.Join(tmp, "build.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	r := runner{log: o.Log, out: logf}
	tree := filepath.Join(tmp, "tree")
	var sources strings.Builder
	for _, s := range rec.Suites {
		fmt.Fprintf(&sources, "deb %s %s main\n", s.URI, s.Name)
	}
	apt := []string{"apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	steps := []step{
		{"debootstrap --variant=minbase " + rec.Suites[0].Name, func() error {
			// In a private mount namespace: debootstrap mounts /proc and /sys
			// in the tree, and a killed run must not leave them there.
			return r.run(ctx, nil, nil, "unshare", "--mount", "--propagation", "private",
				"debootstrap", "--variant="+rec.Variant, "--components=main", rec.Suites[0].Name, tree, rec.Suites[0].URI)
		}},
		{"configure apt, host name, fstab, no services", func() error {
			files := []File{
				{Path: "/etc/apt/sources.list", Data: []byte(sources.String())},
				// Nothing starts in the chroot.
				{Path: "/usr/sbin/policy-rc.d", Data: []byte("#!/bin/sh\nexit 101\n"), Mode: 0o755},
				{Path: "/etc/hostname", Data: []byte(Hostname + "\n")},
				{Path: "/etc/hosts", Data: []byte("127.0.0.1\tlocalhost\n127.0.1.1\t" + Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n")},
				{Path: "/etc/fstab", Data: []byte("# guest.Disk writes the root file system's line\n")},
				// The root's type for initramfs-tools, which would otherwise
				// probe the chroot's (the host's) root device, find nothing
				// and leave fsck out of every initrd.
				{Path: "/etc/initramfs-tools/conf.d/ukdump-guest", Data: []byte("FSTYPE=ext4\n")},
			}
			return writeFiles(tree, files)
		}},
		// --error-on=any: a mirror it cannot reach is an error, not a warning.
		{"apt-get update", func() error { return r.chroot(ctx, tree, "apt-get", "-q", "--error-on=any", "update") }},
		{"apt-get dist-upgrade", func() error { return r.chroot(ctx, tree, append(apt, "dist-upgrade")...) }},
		{"apt-get install " + strings.Join(rec.Packages, " "), func() error {
			err := r.chroot(ctx, tree, append(append(apt, "install", "--no-install-recommends"), rec.Packages...)...)
			if err != nil && (strings.Contains(err.Error(), "was not found") || strings.Contains(err.Error(), "Unable to locate package")) {
				// The security suite lists only its newest version of a package.
				err = fmt.Errorf("%w\n(the guest installs the host's kernel packages at the host's versions, "+
					"and the mirror has moved on: upgrade the host's kernels, apt-get update && apt-get upgrade)", err)
			}
			return err
		}},
		{"root without password, autologin on ttyS0", func() error {
			if err := r.chroot(ctx, tree, "passwd", "--delete", "root"); err != nil {
				return err
			}
			return writeFiles(tree, []File{{Path: "/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf", Data: []byte(
				"[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 - $TERM\n")}})
		}},
		{"clean up", func() error {
			if err := r.chroot(ctx, tree, "apt-get", "clean"); err != nil {
				return err
			}
			// Each disk's first boot makes its own machine id; the guest has
			// no network, so no name servers (debootstrap copied the host's,
			// which apt used until now).
			if err := writeFiles(tree, []File{{Path: "/etc/machine-id"}, {Path: "/etc/resolv.conf"}}); err != nil {
				return err
			}
			for _, p := range []string{"/usr/sbin/policy-rc.d", "/var/lib/dbus/machine-id"} {
				if err := os.Remove(filepath.Join(tree, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			return nil
		}},
		{"check kernels and init", func() error { return checkTree(tree, rec) }},
		{"write recipe.json", func() error {
			pkgs, err := r.output(ctx, nil, nil, "dpkg-query", "--admindir="+filepath.Join(tree, "var/lib/dpkg"), "-W", "-f=${Package} ${Version}\n")
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(struct {
				Recipe
				Key       string
				Installed []string
			}{rec, rec.Key(), strings.Fields(strings.ReplaceAll(string(pkgs), " ", "="))}, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(tmp, "recipe.json"), append(b, '\n'), 0o644)
		}},
	}
	return runSteps(o.Log, "guest root", steps)
}

// checkTree checks that every kernel of rec has its vmlinuz, initrd and
// modules in tree, and that /sbin/init is systemd.
func checkTree(tree string, rec Recipe) error {
	for _, k := range rec.Kernels {
		if _, _, err := Kernel(tree, k.Release); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(tree, "lib/modules", k.Release, "modules.dep")); err != nil {
			return err
		}
	}
	init, err := filepath.EvalSymlinks(filepath.Join(tree, "sbin/init"))
	if err != nil {
		return err
	}
	if !strings.HasSuffix(init, "/systemd") {
		return fmt.Errorf("/sbin/init is %s, not systemd", init)
	}
	return nil
}

// A step is one named build step; runSteps logs each with its duration.
type step struct {
	name string
	do   func() error
}

func (s step) String() string { return s.name }

func runSteps(log *slog.Logger, what string, steps []step) error {
	for _, s := range steps {
		start := time.Now()
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		log.Info(what, "step", s.String(), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// lock takes an exclusive flock on path, waiting for it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// compareVersions orders kernel releases by their numbers: 6.1.0-57 before
// 6.12.117, 6.1.0-9 before 6.1.0-10.
func compareVersions(a, b string) int {
	ca, cb := versionChunks(a), versionChunks(b)
	for i := 0; i < len(ca) && i < len(cb); i++ {
		x, y := ca[i], cb[i]
		if nx, ny := isDigits(x), isDigits(y); nx && ny {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				return len(x) - len(y)
			}
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return len(ca) - len(cb)
}

// versionChunks splits s into runs of digits and runs of other bytes.
func versionChunks(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && isDigit(s[j]) == isDigit(s[i]) {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDigits(s string) bool { return s != "" && isDigit(s[0]) }

// fstab returns the guest's /etc/fstab for the root file system uuid.
func fstab(uuid string) string {
	return "# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=" + uuid + " / ext4 errors=remount-ro 0 1\n"
}
