// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"fmt"
	"strconv"
	"strings"
)

// LVM2 writes its metadata in its own config syntax:
//
//	# a comment
//	name {
//		key = "string"
//		key = 42
//		key = ["a", "b", 1]
//		inner { ... }
//	}
//
// parseText reads that into a tree of sections. Only what the syntax allows
// is accepted; the meaning of keys is metadata.go's.

// value is a config value: a string, a number or a list of values.
type value struct {
	kind byte // 's' string, 'i' integer, 'f' another number (a float, an integer too large: kept as text), 'l' list
	str  string
	num  int64
	list []value
}

// section is `name { ... }`: its keys and, in file order, its sections.
type section struct {
	name string
	keys map[string]value
	subs []*section
}

// maxDepth bounds the nesting of sections and lists (metadata needs 4).
const maxDepth = 16

type textParser struct {
	b    []byte
	i    int
	line int
}

// parseText parses config text into its top-level section (name "").
func parseText(b []byte) (*section, error) {
	p := &textParser{b: b, line: 1}
	top, err := p.body("", 0)
	if err != nil {
		return nil, fmt.Errorf("metadata line %d: %w", p.line, err)
	}
	return top, nil
}

// body reads keys and sections up to the closing brace (depth > 0) or the
// end of the text (depth 0).
func (p *textParser) body(name string, depth int) (*section, error) {
	s := &section{name: name, keys: map[string]value{}}
	subs := map[string]bool{}
	for {
		p.space()
		if p.i >= len(p.b) {
			if depth > 0 {
				return nil, fmt.Errorf("section %q is not closed", name)
			}
			return s, nil
		}
		if p.b[p.i] == '}' {
			if depth == 0 {
				return nil, fmt.Errorf("unexpected '}'")
			}
			p.i++
			return s, nil
		}
		id := p.ident()
		if id == "" {
			return nil, fmt.Errorf("unexpected %q", p.b[p.i])
		}
		p.space()
		if p.i >= len(p.b) {
			return nil, fmt.Errorf("%q: unexpected end", id)
		}
		switch p.b[p.i] {
		case '{':
			if depth+1 >= maxDepth {
				return nil, fmt.Errorf("section %q: nested too deep", id)
			}
			p.i++
			sub, err := p.body(id, depth+1)
			if err != nil {
				return nil, err
			}
			if subs[id] {
				return nil, fmt.Errorf("section %q twice in %q", id, name)
			}
			subs[id] = true
			s.subs = append(s.subs, sub)
		case '=':
			p.i++
			v, err := p.value(depth)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", id, err)
			}
			if _, dup := s.keys[id]; dup {
				return nil, fmt.Errorf("key %q twice in %q", id, name)
			}
			s.keys[id] = v
		default:
			return nil, fmt.Errorf("%q: want '=' or '{', got %q", id, p.b[p.i])
		}
	}
}

// space skips white space and comments.
func (p *textParser) space() {
	for p.i < len(p.b) {
		switch c := p.b[p.i]; c {
		case '\n':
			p.line++
			fallthrough
		case ' ', '\t', '\r', '\f', '\v', 0:
			p.i++
		case '#':
			for p.i < len(p.b) && p.b[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

// ident reads a key or section name: any run of bytes that are not space
// or punctuation of the syntax (VG and LV names may hold + . - _).
func (p *textParser) ident() string {
	j := p.i
	for j < len(p.b) && !strings.ContainsRune(" \t\r\n\f\v\x00{}[]=,\"#'", rune(p.b[j])) {
		j++
	}
	id := string(p.b[p.i:j])
	p.i = j
	return id
}

func (p *textParser) value(depth int) (value, error) {
	p.space()
	if p.i >= len(p.b) {
		return value{}, fmt.Errorf("no value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, err := p.str()
		return value{kind: 's', str: s}, err
	case c == '[':
		if depth+1 >= maxDepth {
			return value{}, fmt.Errorf("list nested too deep")
		}
		p.i++
		v := value{kind: 'l', list: []value{}}
		for {
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return v, nil
			}
			e, err := p.value(depth + 1)
			if err != nil {
				return value{}, err
			}
			v.list = append(v.list, e)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
			}
		}
	case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9':
		j := p.i + 1
		for j < len(p.b) && strings.IndexByte("0123456789.eE+-", p.b[j]) >= 0 {
			j++
		}
		t := string(p.b[p.i:j])
		p.i = j
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return value{kind: 'i', num: n}, nil
		}
		if strings.ContainsAny(t, "0123456789") && strings.Count(t, ".") <= 1 {
			// LVM writes no other numbers in metadata; whatever this is,
			// it is kept as text.
			return value{kind: 'f', str: t}, nil
		}
		return value{}, fmt.Errorf("bad number %q", t)
	default:
		return value{}, fmt.Errorf("bad value starting with %q", c)
	}
}

// str reads a double-quoted string; a backslash escapes the next byte.
func (p *textParser) str() (string, error) {
	var sb strings.Builder
	for p.i++; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; c {
		case '"':
			p.i++
			return sb.String(), nil
		case '\\':
			if p.i+1 < len(p.b) {
				p.i++
				c = p.b[p.i]
			}
			sb.WriteByte(c)
		case '\n':
			p.line++
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return "", fmt.Errorf("string not closed")
}

// sub is the section named name, or nil.
func (s *section) sub(name string) *section {
	for _, x := range s.subs {
		if x.name == name {
			return x
		}
	}
	return nil
}

// str is the string key k; "" if absent.
func (s *section) str(k string) (string, error) {
	v, ok := s.keys[k]
	if !ok {
		return "", nil
	}
	if v.kind != 's' {
		return "", fmt.Errorf("%s/%s is not a string", s.name, k)
	}
	return v.str, nil
}

// uint is the non-negative integer key k; an error if absent and required.
func (s *section) uint(k string, required bool) (uint64, error) {
	v, ok := s.keys[k]
	switch {
	case !ok && !required:
		return 0, nil
	case !ok:
		return 0, fmt.Errorf("%s: no %s", s.name, k)
	case v.kind != 'i' || v.num < 0:
		return 0, fmt.Errorf("%s/%s is not a non-negative integer", s.name, k)
	}
	return uint64(v.num), nil
}

// strs is the list-of-strings key k (status, flags); nil if absent.
func (s *section) strs(k string) ([]string, error) {
	v, ok := s.keys[k]
	if !ok {
		return nil, nil
	}
	if v.kind != 'l' {
		return nil, fmt.Errorf("%s/%s is not a list", s.name, k)
	}
	out := make([]string, 0, len(v.list))
	for _, e := range v.list {
		if e.kind != 's' {
			return nil, fmt.Errorf("%s/%s: not all strings", s.name, k)
		}
		out = append(out, e.str)
	}
	return out, nil
}
