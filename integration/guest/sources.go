// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// An aptSource is one "deb" line of an apt sources file, or one suite of a
// deb822 stanza.
type aptSource struct {
	URI        string
	Suite      string
	Components []string
}

// errNoSource is returned when the host's apt sources do not serve a suite.
var errNoSource = errors.New("no deb source with component main for suite")

// hostSources reads the apt sources of the machine rooted at etcApt (normally
// /etc/apt): sources.list and every *.list and *.sources file in
// sources.list.d, the files apt itself reads.
func hostSources(etcApt string) ([]aptSource, error) {
	files := []string{filepath.Join(etcApt, "sources.list")}
	d := filepath.Join(etcApt, "sources.list.d")
	ents, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources") {
			files = append(files, filepath.Join(d, n))
		}
	}
	var all []aptSource
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var srcs []aptSource
		if strings.HasSuffix(f, ".sources") {
			srcs, err = parseDeb822(strings.NewReader(string(b)))
		} else {
			srcs, err = parseOneLine(strings.NewReader(string(b)))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, srcs...)
	}
	return all, nil
}

// parseOneLine parses the one-line format: "deb [options] URI suite comp…".
func parseOneLine(r io.Reader) ([]aptSource, error) {
	var out []aptSource
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: unterminated [options]", n)
			}
			f = f[1:]
		}
		if len(f) < 3 {
			continue // a flat repository ("deb URI path/"), not a suite
		}
		out = append(out, aptSource{URI: strings.TrimRight(f[0], "/"), Suite: f[1], Components: f[2:]})
	}
	return out, sc.Err()
}

// parseDeb822 parses the deb822 format of *.sources files: stanzas of
// Types, URIs, Suites and Components fields separated by blank lines;
// "Enabled: no" disables a stanza.
func parseDeb822(r io.Reader) ([]aptSource, error) {
	var out []aptSource
	stanza := map[string]string{}
	last := ""
	flush := func() {
		defer clear(stanza)
		if strings.EqualFold(stanza["enabled"], "no") || !slices.Contains(strings.Fields(stanza["types"]), "deb") {
			return
		}
		for _, uri := range strings.Fields(stanza["uris"]) {
			for _, suite := range strings.Fields(stanza["suites"]) {
				out = append(out, aptSource{URI: strings.TrimRight(uri, "/"), Suite: suite, Components: strings.Fields(stanza["components"])})
			}
		}
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation line outside a field", n)
			}
			stanza[last] += " " + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is no field", n, line)
			}
			last = strings.ToLower(strings.TrimSpace(k))
			stanza[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out, sc.Err()
}

// mirrorFor returns the URI of the first source that serves suite with
// component main.
func mirrorFor(srcs []aptSource, suite string) (string, error) {
	for _, s := range srcs {
		if s.Suite == suite && slices.Contains(s.Components, "main") {
			return s.URI, nil
		}
	}
	return "", fmt.Errorf("%w %s", errNoSource, suite)
}
