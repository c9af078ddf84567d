// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/targetspec"
)

// DefaultCABundle is the build host's CA bundle (Debian's ca-certificates).
const DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

// s3Files puts each s3 target's access and secret key files (host paths in
// the config) into the image as layout.TargetS3AccessKey and
// TargetS3SecretKey, mode 0600, its ca_file as layout.TargetCAFile, and,
// once, the CA bundle for https targets without ca_file as
// layout.CABundlePath; it points the image's config at them. A key file
// that others may read is refused: it is a secret, and the image would
// keep it.
func s3Files(cfg *config.Config, caBundle string) (files []File, err error) {
	if caBundle == "" {
		caBundle = DefaultCABundle
	}
	needBundle := false
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		if !t.IsS3() {
			continue
		}
		field := fmt.Sprintf("target[%d]", i)
		spec, err := targetspec.ParseS3(t.URL, t.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("%s.url: %w", field, err)
		}
		for _, k := range []struct {
			name string
			path *string
			dst  string
		}{
			{"access_key_file", &t.AccessKeyFile, layout.TargetS3AccessKey(i)},
			{"secret_key_file", &t.SecretKeyFile, layout.TargetS3SecretKey(i)},
		} {
			data, err := readSecret(*k.path)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", field, k.name, err)
			}
			*k.path = "/" + k.dst
			files = append(files, File{Data: data, Dst: k.dst, Mode: 0o600})
		}
		switch {
		case t.CAFile != "":
			pem, err := readPEM(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s.ca_file: %w", field, err)
			}
			t.CAFile = "/" + layout.TargetCAFile(i)
			files = append(files, File{Data: pem, Dst: layout.TargetCAFile(i), Mode: 0o644})
		case spec.Endpoint.Scheme == "https":
			needBundle = true
		}
	}
	if needBundle {
		pem, err := readPEM(caBundle)
		if err != nil {
			return nil, fmt.Errorf("the system CA bundle for the https s3 targets without ca_file: %w (install ca-certificates, or set ca_file)", err)
		}
		files = append(files, File{Data: pem, Dst: layout.CABundlePath, Mode: 0o644})
	}
	return files, nil
}

// readSecret reads a credential file that only its owner may read.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s is mode %04o: others may read or change this secret (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return data, nil
}

// readPEM reads a file of PEM certificates.
func readPEM(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return data, nil
}
