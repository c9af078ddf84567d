// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ukdump/ukdump/internal/capture"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/manifest"
	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/target/s3"
	"github.com/ukdump/ukdump/internal/target/s3/s3test"
)

// s3Config is an s3 target, then the disk.
func s3Config(endpoint string) string {
	return fmt.Sprintf(`
[collect]
format = "elf"
exclude = ["none"]

[[target]]
url = "s3://dumps/fleet"
endpoint = %q
access_key_file = "/%s"
secret_key_file = "/%s"

[[target]]
device = "LABEL=crashdump"
path = "/var/crash"
wait_device = "300ms"

[action]
final = "poweroff"
failure = "halt"
`, endpoint, layout.TargetS3AccessKey(0), layout.TargetS3SecretKey(0))
}

func writeS3Keys(t *testing.T, r *fakeRoot) {
	for p, v := range map[string]string{layout.TargetS3AccessKey(0): s3test.AccessKey, layout.TargetS3SecretKey(0): s3test.SecretKey} {
		os.MkdirAll(filepath.Dir(filepath.Join(r.dir, p)), 0o700)
		if err := os.WriteFile(filepath.Join(r.dir, p), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCaptureS3 saves an ELF core to S3: vmcore is the core byte for
// byte, the manifest's sha256 is the object's, and the log is there too.
func TestCaptureS3(t *testing.T) {
	srv := s3test.Start(t, "dumps")
	r := newFakeRoot(t, s3Config(srv.URL()), true)
	writeS3Keys(t, r)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved || o.Err != nil || !strings.HasPrefix(o.Target, "s3://dumps/fleet at ") {
		t.Fatalf("Run = %+v, want saved to s3; console:\n%s", o, console.String())
	}
	key := "fleet/" + o.Dir + "/"
	got, err := srv.Object("dumps", key+"vmcore")
	if err != nil || !bytes.Equal(got, r.vmcore) {
		t.Fatalf("vmcore object: %d bytes (%v), want /proc/vmcore's %d", len(got), err, len(r.vmcore))
	}
	mj, err := srv.Object("dumps", key+"manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(got)
	if !m.Complete || m.File != "vmcore" || m.SHA256 != hex.EncodeToString(sum[:]) || m.Target != "s3://dumps/fleet" {
		t.Errorf("manifest = %+v, want complete, vmcore, sha256 %x, target s3://dumps/fleet", m, sum)
	}
	if log, err := srv.Object("dumps", key+"ukdump.log"); err != nil || !strings.Contains(string(log), "s3: completed fleet/"+o.Dir+"/vmcore") {
		t.Errorf("ukdump.log = %q, %v; want the upload completed", log, err)
	}
	if _, err := srv.Object("dumps", key+"vmcore.incomplete"); err == nil {
		t.Error("vmcore.incomplete object exists")
	}
}

// TestCaptureS3Unreachable falls back to the disk.
func TestCaptureS3Unreachable(t *testing.T) {
	r := newFakeRoot(t, s3Config("http://127.0.0.1:1"), true)
	writeS3Keys(t, r)
	var console bytes.Buffer
	o := capture.Run(r.env(&console))
	if o.Result != capture.ResultSaved || !strings.Contains(o.Target, "crashdump") {
		t.Fatalf("Run = %+v, want saved to the disk; console:\n%s", o, console.String())
	}
	if !strings.Contains(console.String(), "target 0 failed: bucket \"dumps\" at http://127.0.0.1:1: s3 ListObjectsV2") || !strings.Contains(console.String(), "connection refused") {
		t.Errorf("console does not say why s3 failed:\n%s", console.String())
	}
	got, err := os.ReadFile(filepath.Join(r.dir, "mnt/target1/var/crash", o.Dir, "vmcore"))
	if err != nil || !bytes.Equal(got, r.vmcore) {
		t.Errorf("vmcore on the disk: %d bytes, %v", len(got), err)
	}
}

// failingS3 is the S3 target whose dump fails after limit bytes: what the
// capture leaves on S3 then.
type failingS3 struct {
	*s3.Target
	limit int
}

func (f failingS3) Open(ctx context.Context) (target.Dir, error) {
	d, err := f.Target.Open(ctx)
	if err != nil {
		return nil, err
	}
	return failingS3Dir{d.(*s3.Dir), f.limit}, nil
}

type failingS3Dir struct {
	*s3.Dir
	limit int
}

func (d failingS3Dir) Create(name string) (target.File, error) {
	f, err := d.Dir.Create(name)
	if err != nil || !strings.HasSuffix(name, "/vmcore.incomplete") {
		return f, err
	}
	return &failingFile{File: f, left: d.limit}, nil
}

// TestCaptureS3CopyFails: the upload is aborted, manifest.json and
// ukdump.log on S3 say so, and the disk gets the dump.
func TestCaptureS3CopyFails(t *testing.T) {
	srv := s3test.Start(t, "dumps")
	r := newFakeRoot(t, s3Config(srv.URL()), true)
	writeS3Keys(t, r)
	var console bytes.Buffer
	env := r.env(&console)
	env.NewTarget = func(i int, tc config.Target) target.Target {
		if i != 0 {
			return nil
		}
		return failingS3{&s3.Target{URL: tc.URL, Endpoint: tc.Endpoint, AccessKeyFile: filepath.Join(r.dir, tc.AccessKeyFile),
			SecretKeyFile: filepath.Join(r.dir, tc.SecretKeyFile)}, 1 << 20}
	}
	o := capture.Run(env)
	if o.Result != capture.ResultSaved || !strings.Contains(o.Target, "crashdump") {
		t.Fatalf("Run = %+v, want saved to the disk; console:\n%s", o, console.String())
	}
	key := "fleet/" + o.Dir + "/"
	mj, err := srv.Object("dumps", key+"manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(mj, &m); err != nil {
		t.Fatal(err)
	}
	if m.Complete || m.File != "" || !strings.Contains(m.Error, "S3 keeps no partial object: the multipart upload of vmcore was aborted") {
		t.Errorf("manifest on S3 = %+v, want incomplete, no file, the upload aborted", m)
	}
	if log, err := srv.Object("dumps", key+"ukdump.log"); err != nil || !strings.Contains(string(log), "copy failed after") {
		t.Errorf("ukdump.log on S3 = %q, %v; want the failure", log, err)
	}
	if _, err := srv.Object("dumps", key+"vmcore"); err == nil {
		t.Error("a vmcore object exists after a failed copy")
	}
	// versitygw keeps the parts of an upload in progress under the
	// bucket's .sgwtmp/multipart: aborted, there are none.
	var left []string
	filepath.WalkDir(filepath.Join(srv.Root, "dumps", ".sgwtmp", "multipart"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("parts left on the server after the abort: %q", left)
	}
}
