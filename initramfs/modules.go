// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Module is one kernel module of a resolved closure.
type Module struct {
	// Name is the normalised module name ('-' replaced by '_'), e.g. "virtio_pci".
	Name string
	// Path is the module file relative to the modules directory, as
	// modules.dep spells it, e.g. "kernel/drivers/virtio/virtio_pci.ko".
	Path string
}

// ErrModuleNotFound is wrapped by the error returned for a requested module
// that is neither in modules.dep nor built into the kernel.
var ErrModuleNotFound = errors.New("module not found")

// notFoundError names the missing module, the modules.dep it was looked up in
// and the kernel version; it unwraps to ErrModuleNotFound.
type notFoundError struct{ name, dir, kver string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("initramfs: module %q not found in %s (kernel %s)", e.name, filepath.Join(e.dir, "modules.dep"), e.kver)
}

func (e *notFoundError) Unwrap() error { return ErrModuleNotFound }

// DefaultModules returns the modules the capture kernel needs for the kinds
// of targets configured: virtio_pci, virtio_blk and ext4 for a disk, and
// virtio_net for the network. Build takes them as Opts.OptionalModules, so
// those missing from a kernel are skipped with a warning.
func DefaultModules(targetsNeedDisk, targetsNeedNet bool) []string {
	var m []string
	if targetsNeedDisk {
		m = append(m, "virtio_pci", "virtio_blk", "ext4")
	}
	if targetsNeedNet {
		if !targetsNeedDisk {
			m = append(m, "virtio_pci")
		}
		m = append(m, "virtio_net")
	}
	return m
}

// ResolveModules returns the closure of the named modules in load order:
// every module comes after its modules.dep dependencies and its modules.softdep
// "pre:" dependencies, and before its "post:" ones. The kernel version in
// errors is the base name of modulesDir.
//
// Names are module names ('-' and '_' are equivalent) or aliases from
// modules.alias. Modules listed in modules.builtin are skipped. Softdeps that
// resolve to no module are skipped too, as modprobe does. When an alias
// matches several modules, the first one ending in "_generic" is preferred,
// otherwise the first in modules.alias. The order is deterministic: a
// depth-first post-order over names as given, visiting each module's
// dependencies in reverse modules.dep order (which is the order modprobe
// loads them in). Dependency cycles are an error.
func ResolveModules(modulesDir string, names []string) ([]Module, error) {
	idx, err := loadIndex(modulesDir, filepath.Base(modulesDir))
	if err != nil {
		return nil, err
	}
	return idx.resolve(names)
}

// index holds the parsed metadata files of one modules directory.
type index struct {
	dir, kver string
	path      map[string]string   // name -> relative path
	deps      map[string][]string // name -> dependency names, as listed in modules.dep
	pre, post map[string][]string // name -> softdep names or aliases
	builtin   map[string]bool
	aliases   [][2]string // {pattern, module name}, normalised, in file order
}

// moduleName turns a path or name such as "kernel/fs/crc-t10dif.ko.xz" into
// the normalised module name "crc_t10dif".
func moduleName(p string) string {
	n := path.Base(p)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// normaliseAlias replaces '-' by '_' outside bracket expressions, as kmod does.
func normaliseAlias(s string) string {
	b := []byte(s)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}

// readLines calls fn with the fields of every non-blank, non-comment line of
// dir/name. A missing file is not an error unless required is set.
func readLines(dir, name string, required bool, fn func(fields []string)) error {
	p := filepath.Join(dir, name)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 0 && !strings.HasPrefix(fields[0], "#") {
			fn(fields)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("initramfs: reading %s: %w", p, err)
	}
	return nil
}

func loadIndex(dir, kver string) (*index, error) {
	idx := &index{
		dir: dir, kver: kver,
		path: map[string]string{}, deps: map[string][]string{},
		pre: map[string][]string{}, post: map[string][]string{},
		builtin: map[string]bool{},
	}
	err := readLines(dir, "modules.dep", true, func(f []string) {
		mod := strings.TrimSuffix(f[0], ":")
		n := moduleName(mod)
		idx.path[n] = mod
		idx.deps[n] = nil
		for _, d := range f[1:] {
			idx.deps[n] = append(idx.deps[n], moduleName(d))
		}
	})
	if err != nil {
		return nil, err
	}
	err = readLines(dir, "modules.softdep", false, func(f []string) {
		if f[0] != "softdep" || len(f) < 2 {
			return
		}
		n, dst := moduleName(f[1]), (map[string][]string)(nil)
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				dst = idx.pre
			case "post:":
				dst = idx.post
			default:
				if dst != nil {
					dst[n] = append(dst[n], w)
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	err = readLines(dir, "modules.alias", false, func(f []string) {
		if f[0] == "alias" && len(f) == 3 {
			idx.aliases = append(idx.aliases, [2]string{normaliseAlias(f[1]), moduleName(f[2])})
		}
	})
	if err != nil {
		return nil, err
	}
	err = readLines(dir, "modules.builtin", false, func(f []string) { idx.builtin[moduleName(f[0])] = true })
	if err != nil {
		return nil, err
	}
	return idx, nil
}

// lookup maps a module name or alias to a module name. builtin reports a
// module built into the kernel; ok is false if nothing matches.
func (idx *index) lookup(name string) (mod string, builtin, ok bool) {
	if n := moduleName(name); idx.path[n] != "" || idx.builtin[n] {
		return n, idx.builtin[n] && idx.path[n] == "", true
	}
	a := normaliseAlias(name)
	var matches []string
	for _, pm := range idx.aliases {
		if m, _ := path.Match(pm[0], a); m && !slices.Contains(matches, pm[1]) {
			matches = append(matches, pm[1])
		}
	}
	if len(matches) == 0 {
		return "", false, false
	}
	mod = matches[0]
	if i := slices.IndexFunc(matches, func(m string) bool { return strings.HasSuffix(m, "_generic") }); i >= 0 {
		mod = matches[i]
	}
	return mod, idx.builtin[mod] && idx.path[mod] == "", true
}

// has reports whether name is a module or alias of this kernel, built in or not.
func (idx *index) has(name string) bool {
	_, _, ok := idx.lookup(name)
	return ok
}

func (idx *index) resolve(names []string) ([]Module, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var (
		order []Module
		stack []string
		visit func(n string) error
	)
	// soft visits softdeps, skipping those that resolve to nothing or to a
	// built-in module.
	// A post softdep that is already being visited is skipped: it is emitted
	// later anyway, so after n.
	soft := func(names []string, post bool) error {
		for _, s := range names {
			if m, builtin, ok := idx.lookup(s); ok && !builtin && !(post && state[m] == visiting) {
				if err := visit(m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	visit = func(n string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := slices.Index(stack, n)
			return fmt.Errorf("initramfs: module dependency cycle: %s", strings.Join(append(stack[i:], n), " -> "))
		}
		if idx.path[n] == "" {
			if !idx.builtin[n] {
				return &notFoundError{name: n, dir: idx.dir, kver: idx.kver}
			}
			state[n] = done // built in, yet listed as a dependency
			return nil
		}
		state[n] = visiting
		stack = append(stack, n)
		if err := soft(idx.pre[n], false); err != nil {
			return err
		}
		deps := idx.deps[n]
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i]); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, Module{Name: n, Path: idx.path[n]})
		return soft(idx.post[n], true)
	}
	for _, name := range names {
		m, builtin, ok := idx.lookup(name)
		if !ok {
			return nil, &notFoundError{name: name, dir: idx.dir, kver: idx.kver}
		}
		if builtin {
			continue
		}
		if err := visit(m); err != nil {
			return nil, err
		}
	}
	return order, nil
}
