// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dump prints a section tree in one canonical form, for comparing.
func dump(s *section) string {
	var b strings.Builder
	var val func(v value)
	val = func(v value) {
		switch v.kind {
		case 's':
			fmt.Fprintf(&b, "%q", v.str)
		case 'i':
			fmt.Fprintf(&b, "%d", v.num)
		case 'f':
			b.WriteString("f" + v.str)
		case 'l':
			b.WriteString("[")
			for i, e := range v.list {
				if i > 0 {
					b.WriteString(",")
				}
				val(e)
			}
			b.WriteString("]")
		}
	}
	var sec func(s *section)
	sec = func(s *section) {
		keys := make([]string, 0, len(s.keys))
		for k := range s.keys {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString(k + "=")
			val(s.keys[k])
			b.WriteString(";")
		}
		for _, x := range s.subs {
			b.WriteString(x.name + "{")
			sec(x)
			b.WriteString("}")
		}
	}
	sec(s)
	return b.String()
}

func TestParseText(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"keys", "a = 1\nb = \"x\" # comment\nc=-7", `a=1;b="x";c=-7;`},
		{"sections", "vg { x { y = 2 } z { } }", `vg{x{y=2;}z{}}`},
		{"lists", `l = [ "a", 1, [2] ] e = [] n = ["pv0", 0 "pv1", 512]`, `e=[];l=["a",1,[2]];n=["pv0",0,"pv1",512];`},
		{"escapes", `s = "a\"b\\c#d"`, `s="a\"b\\c#d";`},
		{"names", "my-vg.1+_ { a_b = 1 }", `my-vg.1+_{a_b=1;}`},
		{"float", "f = 1.5", `f=f1.5;`},
		{"NUL end", "a = 1\x00\x00", `a=1;`},
		{"comment only", "# x\n#y", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseText([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseText(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, dump(s)); diff != "" {
				t.Errorf("parseText(%q) (-want, +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseTextErrors(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"vg {", `^metadata line 1: section "vg" is not closed$`},
		{"}", `unexpected '}'`},
		{"a = 1\na = 2", `^metadata line 2: key "a" twice`},
		{"s {} s {}", `section "s" twice`},
		{"a = \"x", `string not closed`},
		{"a = [1, 2", `no value`},
		{"a", `unexpected end`},
		{"a 1", `want '=' or '{'`},
		{"a = 1.2.3", `bad number`},
		{"a = -", `bad number`},
		{"a = }", `bad value`},
		{strings.Repeat("a {", 20) + strings.Repeat("}", 20), `nested too deep`},
		{"a = " + strings.Repeat("[", 20), `nested too deep`},
		{"= 1", `unexpected '='`},
	} {
		_, err := parseText([]byte(tt.in))
		if err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
			t.Errorf("parseText(%.20q) = %v, want an error matching %q", tt.in, err, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	const pv = `physical_volumes { pv0 { id = "p" pe_start = 2048 pe_count = 10 } }`
	lv := func(seg string) string {
		return `vg { id = "v" seqno = 3 extent_size = 8192 ` + pv + ` logical_volumes { lv { id = "l" status = ["VISIBLE"] segment_count = 1 segment1 { ` + seg + ` } } } }`
	}
	for _, tt := range []struct {
		in, want string
	}{
		{`a { } b { }`, `2 top-level sections`},
		{`vg { seqno = 1 extent_size = 8 }`, `VG vg: no id`},
		{`vg { id = "v" extent_size = 8 }`, `vg: no seqno`},
		{`vg { id = "v" seqno = 1 extent_size = 0 }`, `bad extent_size 0`},
		{`vg { id = "v" seqno = 1 extent_size = "8" }`, `vg/extent_size is not a non-negative integer`},
		{`vg { id = "v" seqno = 1 extent_size = 8 status = "x" }`, `vg/status is not a list`},
		{`vg { id = "v" seqno = 1 extent_size = 8 flags = [1] }`, `vg/flags: not all strings`},
		{`vg { id = "v" seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "p" pe_start = 1 } } }`, `VG vg: pv0: no pe_count`},
		{`vg { id = "v" seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "p" pe_start = 1 pe_count = 4294967296 } } }`, `pe_count 4294967296 is too large`},
		{lv(`start_extent = 0 extent_count = 1 type = "striped" stripe_count = 2 stripes = ["pv0", 0]`), `LV lv: segment1: no stripe_size`},
		{lv(`start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0, "pv0", 1]`), `stripe_count 1, but stripes is not that many`},
		{lv(`start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = [0, "pv0"]`), `stripe 0 is not \(PV name, extent\)`},
		{lv(`start_extent = 0 extent_count = 1`), `segment1: no type`},
		{`vg { id = "v" seqno = 1 extent_size = 8 logical_volumes { lv { segment_count = 2 segment1 { } } } }`, `LV lv: segment_count 2, but 1 sections`},
	} {
		_, err := decodeVG([]byte(tt.in))
		if err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
			t.Errorf("decodeVG(%.40q) = %v, want an error matching %q", tt.in, err, tt.want)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	vg := func(segs string, n int) string {
		return fmt.Sprintf(`vg { id = "v" seqno = 3 extent_size = 8 status = ["READ", "WRITE"]
physical_volumes { pv0 { id = "p" pe_start = 16 pe_count = 10 } }
logical_volumes { lv { id = "l" status = ["READ", "WRITE", "VISIBLE"] segment_count = %d %s } } }`, n, segs)
	}
	lin := func(n, start, count int, pv string, ext int) string {
		return fmt.Sprintf(`segment%d { start_extent = %d extent_count = %d type = "striped" stripe_count = 1 stripes = [%q, %d] }`, n, start, count, pv, ext)
	}
	for _, tt := range []struct {
		name, in, want string
		size           int64 // the device's; 0 is 1 MiB
	}{
		{"hole", vg(lin(1, 0, 2, "pv0", 0)+lin(2, 3, 1, "pv0", 5), 2), `LV lv segment 2: starts at extent 3, want 2`, 0},
		{"past PV", vg(lin(1, 0, 2, "pv0", 9), 1), `extents 9-10 are past PV pv0's 10`, 0},
		{"not a PV", vg(lin(1, 0, 2, "lvol0", 0), 1), `LV lv is on lvol0, which is not a PV of the VG`, 0},
		{"small device", vg(lin(1, 0, 2, "pv0", 8), 1), `on d, which has 80 sectors, fewer than PV pv0 needs`, 80 * 512},
		{"stripes", vg(`segment1 { start_extent = 0 extent_count = 3 type = "striped" stripe_count = 2 stripe_size = 4 stripes = ["pv0", 0, "pv0", 5] }`, 1), `3 extents do not divide into 2 stripes`, 0},
		{"stripe size", vg(`segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 2 stripe_size = 3 stripes = ["pv0", 0, "pv0", 5] }`, 1), `stripe size 3 does not divide the 8 sectors of a stripe`, 0},
		{"unknown type", vg(`segment1 { start_extent = 0 extent_count = 2 type = "frobnicate" }`, 1), `LV lv is of type frobnicate \(unknown\)`, 0},
		{"zero", vg(`segment1 { start_extent = 0 extent_count = 2 type = "zero" }`, 1), `type zero \(zero target\)`, 0},
		{"vdo", vg(`segment1 { start_extent = 0 extent_count = 2 type = "vdo" }`, 1), `type vdo \(VDO\)`, 0},
		{"exported", strings.Replace(vg(lin(1, 0, 2, "pv0", 0), 1), `status = ["READ", "WRITE"]`, `status = ["READ", "WRITE", "EXPORTED"]`, 1), `LV lv is in an exported VG`, 0},
		{"mirror", vg(`segment1 { start_extent = 0 extent_count = 2 type = "mirror" }`, 1), `type mirror \(mirror\)`, 0},
		{"missing flag", strings.Replace(vg(lin(1, 0, 2, "pv0", 0), 1), `pe_count = 10`, `pe_count = 10 flags = ["MISSING"]`, 1), `^VG vg: PV pv0 \(id p\) missing: LV lv cannot be assembled`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeVG([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			size := tt.size
			if size == 0 {
				size = 1 << 20
			}
			v.PVs[0].Dev = &Device{Name: "d", R: bytes.NewReader(nil), Size: size}
			if _, err := v.Plan("lv"); err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("Plan(lv) = %v, want an error matching %q", err, tt.want)
			}
		})
	}
}

func TestDMName(t *testing.T) {
	for _, tt := range []struct{ vg, lv, want string }{
		{"vg0", "root", "vg0-root"},
		{"my-vg", "root", "my--vg-root"},
		{"a-b-c", "my-lv", "a--b--c-my--lv"},
		{"vg", "-", "vg---"},
	} {
		if got := DMName(tt.vg, tt.lv); got != tt.want {
			t.Errorf("DMName(%q, %q) = %q, want %q", tt.vg, tt.lv, got, tt.want)
		}
	}
}
