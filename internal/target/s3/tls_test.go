// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ukdump/ukdump/internal/target/s3/s3test"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ukdump test S3"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLS: an https endpoint is verified against ca_file (or the image's
// CA bundle); a server whose certificate is not in it is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	srv := s3test.StartTLS(t, cert, key, bucket)
	var log testLog
	t.Run("ca_file", func(t *testing.T) {
		tg := newTarget(t, srv, "s3://dumps", &log)
		tg.CAFile = cert
		d := open(t, tg)
		defer d.Close()
		if err := writeDump(d, "h-20261202T000000Z", randomBytes(MinPartSize+3, 9), 1<<20, nil); err != nil {
			t.Fatalf("writeDump over https = %v", err)
		}
	})
	t.Run("the image's CA bundle", func(t *testing.T) {
		tg := newTarget(t, srv, "s3://dumps", &log)
		tg.SystemCAFile = cert
		open(t, tg).Close()
	})
	t.Run("unknown CA", func(t *testing.T) {
		other, _ := writeCert(t, t.TempDir())
		tg := newTarget(t, srv, "s3://dumps", &log)
		tg.CAFile = other
		if _, err := tg.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("Open with another CA = %v, want certificate signed by unknown authority", err)
		}
	})
}
