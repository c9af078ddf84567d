// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
)

// testCA writes a self-signed certificate as PEM.
func testCA(t *testing.T, path string) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestS3Files(t *testing.T) {
	dir := t.TempDir()
	access, secret, ca, bundle := filepath.Join(dir, "a"), filepath.Join(dir, "s"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "bundle.crt")
	os.WriteFile(access, []byte("AKIA\n"), 0o600)
	os.WriteFile(secret, []byte("secret\n"), 0o640)
	caPEM, bundlePEM := testCA(t, ca), testCA(t, bundle)
	cfg := config.Config{Targets: []config.Target{
		{Device: "LABEL=x", Path: "/"},
		{URL: "s3://dumps/p", Endpoint: "https://s3.example.com", AccessKeyFile: access, SecretKeyFile: secret, CAFile: ca},
		{URL: "s3://dumps/q", Endpoint: "https://s3.example.net", AccessKeyFile: access, SecretKeyFile: secret},
		{URL: "s3://dumps/r", Endpoint: "http://10.0.2.2:7070", AccessKeyFile: access, SecretKeyFile: secret},
	}}
	files, err := s3Files(&cfg, bundle)
	if err != nil {
		t.Fatalf("s3Files = %v", err)
	}
	want := []File{
		{Data: []byte("AKIA\n"), Dst: layout.TargetS3AccessKey(1), Mode: 0o600},
		{Data: []byte("secret\n"), Dst: layout.TargetS3SecretKey(1), Mode: 0o600},
		{Data: caPEM, Dst: layout.TargetCAFile(1), Mode: 0o644},
		{Data: []byte("AKIA\n"), Dst: layout.TargetS3AccessKey(2), Mode: 0o600},
		{Data: []byte("secret\n"), Dst: layout.TargetS3SecretKey(2), Mode: 0o600},
		{Data: []byte("AKIA\n"), Dst: layout.TargetS3AccessKey(3), Mode: 0o600},
		{Data: []byte("secret\n"), Dst: layout.TargetS3SecretKey(3), Mode: 0o600},
		{Data: bundlePEM, Dst: layout.CABundlePath, Mode: 0o644},
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("s3Files (-want, +got):\n%s", diff)
	}
	if got := cfg.Targets[1]; got.AccessKeyFile != "/"+layout.TargetS3AccessKey(1) || got.SecretKeyFile != "/"+layout.TargetS3SecretKey(1) || got.CAFile != "/"+layout.TargetCAFile(1) {
		t.Errorf("the image's config points at %+v", got)
	}

	for _, tt := range []struct {
		name  string
		setup func(t *config.Target)
		want  string
	}{
		{"world-readable secret", func(tg *config.Target) { os.Chmod(secret, 0o644) }, "target[0].secret_key_file: " + secret + " is mode 0644: others may read or change this secret (chmod 600 " + secret + ")"},
		{"missing access key", func(tg *config.Target) { tg.AccessKeyFile = filepath.Join(dir, "none") }, "target[0].access_key_file: stat " + filepath.Join(dir, "none")},
		{"bad ca_file", func(tg *config.Target) { tg.CAFile = access }, "target[0].ca_file: " + access + " holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.Chmod(secret, 0o600)
			c := config.Config{Targets: []config.Target{{URL: "s3://dumps", Endpoint: "https://h", AccessKeyFile: access, SecretKeyFile: secret}}}
			tt.setup(&c.Targets[0])
			if _, err := s3Files(&c, bundle); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("s3Files = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("no CA bundle", func(t *testing.T) {
		c := config.Config{Targets: []config.Target{{URL: "s3://dumps", Endpoint: "https://h", AccessKeyFile: access, SecretKeyFile: secret}}}
		if _, err := s3Files(&c, filepath.Join(dir, "none.crt")); err == nil || !strings.Contains(err.Error(), "install ca-certificates, or set ca_file") {
			t.Errorf("s3Files = %v, want the CA bundle's error", err)
		}
	})
}
