// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package targetspec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		url       string
		want      URL
		addr, dir string
	}{
		{"sftp://kdump@dumphost/var/crash", URL{"sftp", "kdump", "dumphost", 22, "/var/crash"}, "dumphost:22", "/var/crash"},
		{"scp://kdump@dumphost:2222/var/crash/", URL{"scp", "kdump", "dumphost", 2222, "/var/crash/"}, "dumphost:2222", "/var/crash"},
		{"sftp://kdump@[2001:db8::1]:22/x", URL{"sftp", "kdump", "2001:db8::1", 22, "/x"}, "[2001:db8::1]:22", "/x"},
		{"sftp://kdump@dumphost:/x", URL{"sftp", "kdump", "dumphost", 22, "/x"}, "dumphost:22", "/x"},
		{"sftp://kdump@dumphost/~/crash", URL{"sftp", "kdump", "dumphost", 22, "/~/crash"}, "dumphost:22", "crash"},
		{"sftp://kdump@dumphost/~", URL{"sftp", "kdump", "dumphost", 22, "/~"}, "dumphost:22", "."},
		{"sftp://kdump@dumphost/~/", URL{"sftp", "kdump", "dumphost", 22, "/~/"}, "dumphost:22", "."},
	} {
		got, err := ParseURL(tt.url)
		if err != nil {
			t.Errorf("ParseURL(%q) = %v", tt.url, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseURL(%q) (-want, +got):\n%s", tt.url, diff)
		}
		if got.Addr() != tt.addr || got.Dir() != tt.dir {
			t.Errorf("ParseURL(%q): Addr() = %q, Dir() = %q; want %q, %q", tt.url, got.Addr(), got.Dir(), tt.addr, tt.dir)
		}
	}
	for _, tt := range []struct{ url, want string }{
		{"ftp://kdump@dumphost/var/crash", `unsupported scheme "ftp" (want sftp, scp)`},
		{"http://u@h/x", `unsupported scheme "http"`},
		{"sftp:///x", `"sftp:///x" needs user@host`},
		{"sftp://dumphost/var/crash", "needs user@host"},
		{"sftp://u:p@h/x", "passwords are not supported (use identity)"},
		{"sftp://u@h:0/x", `"sftp://u@h:0/x": bad port "0" (want 1-65535)`},
		{"sftp://u@h:99999/x", `bad port "99999"`},
		{"sftp://u@h:ssh/x", `bad url "sftp://u@h:ssh/x"`},
		{"sftp://kdump@dumphost", "needs an absolute path without '..' after the host"},
		{"sftp://kdump@dumphost/var/../etc", "without '..'"},
		{"sftp://kdump@dumphost/x?a=b", "unexpected query or fragment"},
		{"sftp://kdump@dumphost/x#frag", "unexpected query or fragment"},
	} {
		if got, err := ParseURL(tt.url); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q) = %+v, %v; want an error containing %q", tt.url, got, err, tt.want)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for _, tt := range []struct {
		spec, kind, value, desc, wantErr string
	}{
		{spec: "UUID=9B3C2A10-7d4e-4f5a-8b6c-0d1e2f3a4b5c", kind: "UUID", value: "9B3C2A10-7d4e-4f5a-8b6c-0d1e2f3a4b5c", desc: `UUID="9B3C2A10-7d4e-4f5a-8b6c-0d1e2f3a4b5c"`},
		{spec: "UUID=1234-ABCD", kind: "UUID", value: "1234-ABCD", desc: `UUID="1234-ABCD"`},
		{spec: `LABEL="my dumps"`, kind: "LABEL", value: "my dumps", desc: `LABEL="my dumps"`},
		{spec: "LABEL=a=b", kind: "LABEL", value: "a=b", desc: `LABEL="a=b"`},
		{spec: "PARTUUID=0002dd75-01", kind: "PARTUUID", value: "0002dd75-01", desc: `PARTUUID="0002dd75-01"`},
		{spec: "/dev/vdb", kind: "PATH", value: "/dev/vdb", desc: "path /dev/vdb"},
		{spec: "/dev/disk/by-id/virtio-x=y", kind: "PATH", value: "/dev/disk/by-id/virtio-x=y", desc: "path /dev/disk/by-id/virtio-x=y"},
		{spec: "", wantErr: `device spec "" is not UUID=…, LABEL=…, PARTUUID=… or a /dev/… path`},
		{spec: "vdb", wantErr: `device spec "vdb" is not UUID=…, LABEL=…, PARTUUID=… or a /dev/… path`},
		{spec: "/dev/", wantErr: `device spec "/dev/" names no device (want e.g. /dev/vdb)`},
		{spec: "/dev/../etc/passwd", wantErr: `device spec "/dev/../etc/passwd" names no device`},
		{spec: "LABEL=", wantErr: `device spec "LABEL=": empty LABEL (e.g. LABEL=crashdump)`},
		{spec: `UUID=""`, wantErr: `device spec "UUID=\"\"": empty UUID`},
		{spec: "uuid=1234-abcd", wantErr: `unknown kind "uuid"`},
		{spec: "UUID=crashdump", wantErr: `device spec "UUID=crashdump": UUID must be hex digits and dashes`},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			d, err := ParseDevice(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseDevice(%q) = %+v, %v; want error %q", tt.spec, d, err, tt.wantErr)
				}
				return
			}
			if err != nil || d != (Device{tt.kind, tt.value}) || d.String() != tt.desc {
				t.Errorf("ParseDevice(%q) = %+v (%s), %v; want %q, %q (%s), nil", tt.spec, d, d, err, tt.kind, tt.value, tt.desc)
			}
		})
	}
}

func TestParseS3(t *testing.T) {
	for _, tt := range []struct {
		url, endpoint        string
		bucket, prefix, addr string
	}{
		{"s3://dumps", "https://s3.example.com", "dumps", "", "s3.example.com:443"},
		{"s3://dumps/", "http://10.0.2.2:7070", "dumps", "", "10.0.2.2:7070"},
		{"s3://my.dumps-1/fleet/crash/", "https://[2001:db8::1]:9000/", "my.dumps-1", "fleet/crash/", "[2001:db8::1]:9000"},
		{"s3://dumps/a_b.c-d", "http://h", "dumps", "a_b.c-d/", "h:80"},
	} {
		got, err := ParseS3(tt.url, tt.endpoint)
		if err != nil {
			t.Errorf("ParseS3(%q, %q) = %v", tt.url, tt.endpoint, err)
			continue
		}
		if got.Bucket != tt.bucket || got.Prefix != tt.prefix || got.Addr() != tt.addr {
			t.Errorf("ParseS3(%q, %q) = %q, %q, Addr %q; want %q, %q, %q", tt.url, tt.endpoint, got.Bucket, got.Prefix, got.Addr(), tt.bucket, tt.prefix, tt.addr)
		}
	}
	for _, tt := range []struct{ url, endpoint, want string }{
		{"s3://Dumps", "http://h", `bad bucket name "Dumps"`},
		{"s3://ab", "http://h", "bad bucket name"},
		{"s3://key:secret@dumps", "http://h", "the credentials in access_key_file"},
		{"s3://dumps/a/../b", "http://h", `bad prefix segment ".."`},
		{"s3://dumps/a//b", "http://h", `bad prefix segment ""`},
		{"s3://dumps/a b", "http://h", `bad prefix segment "a b"`},
		{"s3://dumps", "ftp://h", "want an http:// or https:// url"},
		{"s3://dumps", "s3.example.com", "want an http:// or https:// url"},
		{"s3://dumps", "https://h/bucket", "want scheme://host[:port] only"},
		{"sftp://u@h/x", "http://h", `unsupported scheme "sftp" (want s3)`},
	} {
		if _, err := ParseS3(tt.url, tt.endpoint); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseS3(%q, %q) = %v; want an error containing %q", tt.url, tt.endpoint, err, tt.want)
		}
	}
}
