// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package lvm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/dm"
)

// sparse is a PV image of testdata: its head (and tail) as lvm2 wrote
// them, zeros between, Size bytes in all (testdata/sizes).
type sparse struct {
	head, tail []byte
	size       int64
}

func (s *sparse) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for ; n < len(b) && off+int64(n) < s.size; n++ {
		p := off + int64(n)
		switch t := s.size - int64(len(s.tail)); {
		case p < int64(len(s.head)):
			b[n] = s.head[p]
		case p >= t:
			b[n] = s.tail[p-t]
		default:
			b[n] = 0
		}
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image is the PV image name of testdata as a Device, numbered 7:minor.
func image(t testing.TB, name string, minor uint32) Device {
	t.Helper()
	sizes, err := os.ReadFile("testdata/sizes")
	if err != nil {
		t.Fatal(err)
	}
	s := &sparse{head: gunzip(t, filepath.Join("testdata", name+".img.gz"))}
	for _, line := range strings.Split(string(sizes), "\n") {
		if n, sz, _ := strings.Cut(line, " "); n == name {
			s.size, _ = strconv.ParseInt(sz, 10, 64)
		}
	}
	if s.size == 0 {
		t.Fatalf("testdata/sizes has no %s", name)
	}
	if _, err := os.Stat(filepath.Join("testdata", name+".tail.gz")); err == nil {
		s.tail = gunzip(t, filepath.Join("testdata", name+".tail.gz"))
	}
	return Device{Name: name, R: s, Size: s.size, Major: 7, Minor: minor}
}

// scan scans the images names (numbered from 7:1 on) and wants no problems.
func scan(t *testing.T, names ...string) []*VG {
	t.Helper()
	var devs []Device
	for i, n := range names {
		devs = append(devs, image(t, n, uint32(i+1)))
	}
	vgs, problems := Scan(devs)
	if len(problems) > 0 {
		t.Fatalf("Scan(%v) problems: %v", names, problems)
	}
	return vgs
}

func TestCRC(t *testing.T) {
	// LVM's calc_crc, bit by bit: CRC-32's reflected polynomial, from
	// INITIAL_CRC, no final inversion.
	ref := func(b []byte) uint32 {
		c := uint32(crcInit)
		for _, x := range b {
			c ^= uint32(x)
			for range 8 {
				if c&1 != 0 {
					c = c>>1 ^ 0xedb88320
				} else {
					c >>= 1
				}
			}
		}
		return c
	}
	for _, in := range []string{"", "\x00", "LABELONE", strings.Repeat("lvm2 ", 200)} {
		if got, want := crc([]byte(in)), ref([]byte(in)); got != want {
			t.Errorf("crc(%.10q) = %#x, want %#x", in, got, want)
		}
	}
}

func TestScanLinear(t *testing.T) {
	vgs := scan(t, "linear")
	if len(vgs) != 1 {
		t.Fatalf("Scan = %d VGs, want 1", len(vgs))
	}
	vg := vgs[0]
	if vg.Name != "my-vg" || vg.ExtentSize != 8192 || len(vg.PVs) != 1 || len(vg.LVs) != 2 {
		t.Fatalf("Scan = VG %s extent_size %d, %d PVs, %d LVs; want my-vg 8192, 1, 2", vg.Name, vg.ExtentSize, len(vg.PVs), len(vg.LVs))
	}
	pv := vg.PVs[0]
	if pv.Dev == nil || pv.Dev.Name != "linear" || pv.PEStart != 2048 || pv.PECount != 15 || pv.Hint == "" {
		t.Errorf("PV = %+v, want on linear, pe_start 2048, pe_count 15", pv)
	}
	p, err := vg.Plan("root")
	if err != nil {
		t.Fatal(err)
	}
	want := []dm.Target{{Start: 0, Length: 4 * 8192, Type: "linear", Params: "7:1 2048"}}
	if diff := cmp.Diff(want, p.Targets); diff != "" {
		t.Errorf("Plan(root).Targets (-want, +got):\n%s", diff)
	}
	if p.Name != "my--vg-root" || p.Sectors != 4*8192 || p.ReadOnly {
		t.Errorf("Plan(root) = %s, %d sectors, read-only %v; want my--vg-root, %d, false", p.Name, p.Sectors, p.ReadOnly, 4*8192)
	}
	if wantUUID := "LVM-" + strings.ReplaceAll(vg.ID+vg.LVs[0].ID, "-", ""); p.UUID != wantUUID || len(p.UUID) != 4+64 {
		t.Errorf("Plan(root).UUID = %s, want %s", p.UUID, wantUUID)
	}
	// swap follows root on the PV.
	p, err = vg.Plan("swap")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Targets[0].String(), "0 16384 linear 7:1 34816"; got != want {
		t.Errorf("Plan(swap) = %s, want %s", got, want)
	}
}

func TestScanStriped(t *testing.T) {
	vg := scan(t, "stripeA", "stripeB")[0]
	for _, tt := range []struct {
		lv   string
		want []string
	}{
		{"stripes", []string{"0 49152 striped 2 128 7:1 2048 7:2 2048"}},
		{"span", []string{"0 98304 linear 7:1 26624", "98304 65536 linear 7:2 26624"}},
	} {
		p, err := vg.Plan(tt.lv)
		if err != nil {
			t.Errorf("Plan(%s) = %v", tt.lv, err)
			continue
		}
		var got []string
		for _, x := range p.Targets {
			got = append(got, x.String())
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Plan(%s).Targets (-want, +got):\n%s", tt.lv, diff)
		}
	}
}

// TestTruth checks every segment of every VG against what lvm2's lvs said
// of it when mk.sh made the images (testdata/VG.lvs): type, extents,
// stripes and which PV image and extents each stripe is on.
func TestTruth(t *testing.T) {
	for vgName, images := range map[string][]string{
		"my-vg": {"linear"}, "vg1": {"stripeA", "stripeB"}, "vgthin": {"thinA", "thinB"}, "vgwrap": {"wrap"},
	} {
		t.Run(vgName, func(t *testing.T) {
			vgs := scan(t, images...)
			if len(vgs) != 1 || vgs[0].Name != vgName {
				t.Fatalf("Scan(%v) = %d VGs, want %s", images, len(vgs), vgName)
			}
			vg := vgs[0]
			f, err := os.Open(filepath.Join("testdata", vgName+".lvs"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lines := 0
			for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
				// lv_name segtype seg_start_pe seg_size_pe stripes stripe_size(sectors) seg_pe_ranges...
				w := strings.Fields(sc.Text())
				name := strings.Trim(w[0], "[]")
				lv := vg.LVs[slicesIndex(vg.LVs, name)]
				start, _ := strconv.ParseUint(w[2], 10, 64)
				var g *Segment
				for i := range lv.Segments {
					if lv.Segments[i].StartExtent == start {
						g = &lv.Segments[i]
					}
				}
				if g == nil {
					t.Errorf("LV %s: no segment at extent %d", name, start)
					continue
				}
				typ := g.Type
				if typ == "striped" && g.StripeCount == 1 {
					typ = "linear"
				}
				got := fmt.Sprintf("%s %s %d %d", name, typ, g.StartExtent, g.ExtentCount)
				if want := strings.Join([]string{name, w[1], w[2], w[3]}, " "); got != want {
					t.Errorf("segment = %s, want %s", got, want)
				}
				if g.Type != "striped" {
					continue
				}
				got = fmt.Sprintf("%d %d", g.StripeCount, g.StripeSize)
				for _, s := range g.Stripes {
					got += fmt.Sprintf(" %s:%d-%d", vg.pv(s.PV).Dev.Name, s.StartExtent, s.StartExtent+g.ExtentCount/g.StripeCount-1)
				}
				if want := strings.Join(w[4:], " "); got != want {
					t.Errorf("LV %s segment at %d: stripes %s, want %s", name, start, got, want)
				}
			}
			if lines == 0 {
				t.Errorf("testdata/%s.lvs is empty", vgName)
			}
		})
	}
}

func slicesIndex(lvs []*LV, name string) int {
	for i, l := range lvs {
		if l.Name == name {
			return i
		}
	}
	panic("no LV " + name)
}

func TestWrapped(t *testing.T) {
	d := image(t, "wrap", 1)
	l, err := readLabel(d.R)
	if err != nil {
		t.Fatal(err)
	}
	// The newest metadata must run past the end of the area: that is what
	// this image is for.
	h := make([]byte, 64)
	if _, err := d.R.ReadAt(h, int64(l.mdas[0].off)); err != nil {
		t.Fatal(err)
	}
	size, off, n := binary.LittleEndian.Uint64(h[32:]), binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:])
	if off+n <= size {
		t.Fatalf("testdata/wrap: metadata at %d, %d bytes, in %d: does not wrap (run mk.sh again)", off, n, size)
	}
	text, _, err := readMetadata(d.R, l.mdas[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(text, []byte("vgwrap {")) || !bytes.Contains(text, []byte("contents = \"Text Format Volume Group\"")) {
		t.Errorf("readMetadata(wrap) = %q..., want vgwrap's whole text", text[:min(len(text), 40)])
	}
	vg := scan(t, "wrap")[0]
	if vg.Seqno < 90 {
		t.Errorf("vgwrap seqno = %d, want the last of many updates", vg.Seqno)
	}
	if _, err := vg.Plan("keep"); err != nil {
		t.Errorf("Plan(keep) = %v", err)
	}
}

func TestFind(t *testing.T) {
	vgs := scan(t, "linear", "stripeA", "stripeB", "thinA", "thinB")
	for _, tt := range []struct {
		spec    string
		want    string // VG/LV
		err     error
		message string // a regexp the error must match
	}{
		{spec: "/dev/mapper/my--vg-root", want: "my-vg/root"},
		{spec: "/dev/my-vg/swap", want: "my-vg/swap"},
		{spec: "/dev/vg1/span", want: "vg1/span"},
		{spec: "/dev/mapper/vg1-stripes", want: "vg1/stripes"},
		{spec: "LABEL=dumps", want: "my-vg/root"},
		{spec: "UUID=5A3E8C3C-7A1F-4D0E-9C1B-2F6D6C0E9A11", want: "my-vg/root"},
		{spec: `LABEL="dumps"`, want: "my-vg/root"},
		{spec: "/dev/vgthin/plain", want: "vgthin/plain"},
		{spec: "/dev/mapper/my-vg-root", err: ErrNotFound, message: "no LVM logical volume is /dev/mapper/my-vg-root .*my-vg/root"},
		{spec: "/dev/vg1/root", err: ErrNotFound, message: "VG vg1 has no LV root"},
		{spec: "/dev/vda1", err: ErrNotFound},
		{spec: "/dev/nope/root", err: ErrNotFound, message: "no VG nope"},
		{spec: "PARTUUID=0a0b", err: ErrNotFound},
		{spec: "LABEL=other", err: ErrNotFound, message: "not probed: .*LV thin is of type thin"},
		{spec: "/dev/vgthin/thin", err: ErrUnsupported, message: "^VG vgthin: LV thin is of type thin \\(thin provisioning\\)"},
		{spec: "/dev/vgthin/pool", err: ErrUnsupported, message: "LV pool is of type thin-pool"},
		{spec: "/dev/vgthin/pool_tdata", err: ErrUnsupported, message: "LV pool_tdata is hidden"},
		{spec: "/dev/vgthin/origin", err: ErrUnsupported, message: "LV origin is the origin of snapshot snap"},
		{spec: "/dev/vgthin/snap", err: ErrUnsupported, message: "LV snap is a snapshot"},
		{spec: "/dev/vgthin/mirrored", err: ErrUnsupported, message: "LV mirrored is of type raid1 \\(RAID\\)"},
		{spec: "/dev/vgthin/cpool", err: ErrUnsupported, message: "LV cpool is of type cache-pool \\(cache\\)"},
		{spec: "/dev/vgthin/snapshot0", err: ErrUnsupported, message: "type snapshot"},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := Find(vgs, tt.spec, blkid.Probe)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !regexp.MustCompile(tt.message).MatchString(fmt.Sprint(err)) {
					t.Fatalf("Find(%s) = %v, want %v matching %q", tt.spec, err, tt.err, tt.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find(%s) = %v", tt.spec, err)
			}
			if got := p.VG.Name + "/" + p.LV.Name; got != tt.want {
				t.Errorf("Find(%s) = %s, want %s", tt.spec, got, tt.want)
			}
		})
	}
}

func TestMissingPV(t *testing.T) {
	vgs := scan(t, "stripeA")
	for _, lv := range []string{"stripes", "span"} {
		_, err := Find(vgs, "/dev/vg1/"+lv, nil)
		want := regexp.MustCompile(`^VG vg1: PV pv1 \(id \w{6}(-\w{4}){5}-\w{6}, last seen as /dev/loop\d+\) missing: LV ` + lv + ` cannot be assembled`)
		if !errors.Is(err, ErrMissingPV) || !want.MatchString(err.Error()) {
			t.Errorf("Find(/dev/vg1/%s) = %v, want %v", lv, err, want)
		}
	}
	// stripeB alone: its two metadata copies give the VG too.
	vgs = scan(t, "stripeB")
	if len(vgs) != 1 || vgs[0].PVs[0].Dev != nil || vgs[0].PVs[1].Dev == nil {
		t.Errorf("Scan(stripeB) = %v, want vg1 with pv1 only", vgs)
	}
}

// TestDamage breaks one byte of an image at a time and wants the problem
// named, with its device and place.
func TestDamage(t *testing.T) {
	for _, tt := range []struct {
		name  string
		image string
		at    int64 // the byte to flip; -1: 100 bytes into the newest text
		want  string
		vgs   int // still found
	}{
		{"label", "linear", 512 + 40, `^linear: label checksum mismatch in sector 1`, 0},
		{"label magic", "linear", 512, ``, 0},
		{"header", "linear", 4096 + 200, `^linear: metadata header checksum mismatch at 0x1000$`, 0},
		{"header magic", "linear", 4096 + 4, `^linear: no metadata header at 0x1000 \(bad magic\)$`, 0},
		{"text", "linear", -1, `^linear: metadata checksum mismatch at 0x1[0-9a-f]{3}$`, 0},
		// stripeB has a second copy at its end: the VG is still found.
		{"one of two copies", "stripeB", -1, `^stripeB: metadata checksum mismatch at 0x1[0-9a-f]{3}$`, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := image(t, tt.image, 1)
			s := d.R.(*sparse)
			if tt.at < 0 {
				// The byte must be in the newest text: find where it is.
				l, _ := readLabel(s)
				_, at, err := readMetadata(s, l.mdas[0])
				if err != nil {
					t.Fatal(err)
				}
				tt.at = int64(at) + 100
			}
			s.head[tt.at] ^= 0x55
			vgs, problems := Scan([]Device{d})
			if len(vgs) != tt.vgs {
				t.Errorf("Scan = %d VGs, want %d", len(vgs), tt.vgs)
			}
			if tt.want == "" {
				if len(problems) != 0 {
					t.Errorf("Scan problems = %v, want none (not a PV)", problems)
				}
				return
			}
			if len(problems) != 1 || !regexp.MustCompile(tt.want).MatchString(problems[0].Error()) {
				t.Errorf("Scan problems = %v, want one matching %q", problems, tt.want)
			}
		})
	}
}

// TestStripedReader checks the reading of a striped LV against a layout
// worked out by hand: 3 stripes of 2-sector chunks, extents of 4 sectors.
func TestStripedReader(t *testing.T) {
	var devs []Device
	for i := range 3 {
		b := make([]byte, 64*sectorSize)
		for s := range 64 {
			b[s*sectorSize], b[s*sectorSize+1] = byte(i), byte(s) // each sector says where it is
		}
		devs = append(devs, Device{Name: fmt.Sprintf("d%d", i), R: bytes.NewReader(b), Size: int64(len(b)), Major: 8, Minor: uint32(16 * i)})
	}
	text := `v { id = "x" seqno = 1 extent_size = 4 status = ["READ"]
physical_volumes {
	p0 { id = "a" pe_start = 8 pe_count = 8 }
	p1 { id = "b" pe_start = 8 pe_count = 8 }
	p2 { id = "c" pe_start = 8 pe_count = 8 }
}
logical_volumes { s { id = "y" status = ["READ", "WRITE", "VISIBLE"] segment_count = 1
	segment1 { start_extent = 0 extent_count = 6 type = "striped" stripe_count = 3 stripe_size = 2
		stripes = ["p0", 1, "p1", 0, "p2", 2] } } } }`
	vg, err := decodeVG([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for i, pv := range vg.PVs {
		pv.Dev = &devs[i]
	}
	p, err := vg.Plan("s")
	if err != nil {
		t.Fatal(err)
	}
	// The stripes start at pe_start 8 + extent*4: d0 at 12, d1 at 8, d2 at 16.
	if got, want := p.Targets[0].String(), "0 24 striped 3 2 8:0 12 8:16 8 8:32 16"; got != want {
		t.Errorf("Plan(s) = %s, want %s", got, want)
	}
	if !p.ReadOnly {
		t.Errorf("Plan(s).ReadOnly = false for a VG without WRITE")
	}
	// LV sector -> (device, sector): chunks of 2 sectors go round d0 d1 d2.
	want := [24][2]int{
		{0, 12}, {0, 13}, {1, 8}, {1, 9}, {2, 16}, {2, 17},
		{0, 14}, {0, 15}, {1, 10}, {1, 11}, {2, 18}, {2, 19},
		{0, 16}, {0, 17}, {1, 12}, {1, 13}, {2, 20}, {2, 21},
		{0, 18}, {0, 19}, {1, 14}, {1, 15}, {2, 22}, {2, 23},
	}
	b := make([]byte, 24*sectorSize)
	if n, err := p.ReaderAt().ReadAt(b, 0); n != len(b) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	for s, w := range want {
		if got := [2]int{int(b[s*sectorSize]), int(b[s*sectorSize+1])}; got != w {
			t.Errorf("LV sector %d is d%d sector %d, want d%d sector %d", s, got[0], got[1], w[0], w[1])
		}
	}
	// Across chunk boundaries, from the middle of a sector.
	c := make([]byte, 2*sectorSize)
	if n, err := p.ReaderAt().ReadAt(c, sectorSize+sectorSize/2); n != len(c) || err != nil {
		t.Fatalf("ReadAt(1.5 sectors in) = %d, %v", n, err)
	}
	if got := [3]byte{c[sectorSize/2], c[sectorSize/2+1], c[3*sectorSize/2+1]}; got != [3]byte{1, 8, 9} {
		t.Errorf("ReadAt(1.5 sectors in) = %v, want d1 sectors 8 then 9", got)
	}
	if n, err := p.ReaderAt().ReadAt(c, 23*sectorSize); n != sectorSize || err != io.EOF {
		t.Errorf("ReadAt(past the end) = %d, %v; want %d, EOF", n, err, sectorSize)
	}
}
