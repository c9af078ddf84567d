// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package targetspec

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// SchemeS3 is an S3 target's url: s3://bucket/prefix.
const SchemeS3 = "s3"

// S3 multipart part sizes. S3 wants at least 5 MiB in every part but the
// last, and at most 10000 parts: 8 MiB parts hold a 78 GiB object (a
// flattened -d 31 dump of a machine with far more memory than that). The
// capture sends S3InFlight parts while it fills one more, so it holds
// (S3InFlight+1) × part size: S3UploadBytes.
const (
	S3MinPartSize     = 5 << 20
	S3MaxPartSize     = 64 << 20
	S3DefaultPartSize = 8 << 20
	S3InFlight        = 1
)

// S3UploadBytes is the memory an upload with parts of partSize (0: the
// default) holds.
func S3UploadBytes(partSize int64) int64 {
	if partSize == 0 {
		partSize = S3DefaultPartSize
	}
	return (S3InFlight + 1) * partSize
}

// IsS3 reports whether a target url is an S3 one (it may still be bad).
func IsS3(s string) bool { return strings.HasPrefix(s, SchemeS3+"://") }

// S3 is a parsed S3 target.
type S3 struct {
	// Bucket is the bucket's name.
	Bucket string
	// Prefix is the key prefix dump directories are made under: "" or a
	// path ending in "/" ("crash/" for s3://bucket/crash).
	Prefix string
	// Endpoint is the server: scheme http or https, host and port only.
	Endpoint *url.URL
}

// Addr is the endpoint's host:port, for dialling (80 or 443 by default).
func (s S3) Addr() string {
	if p := s.Endpoint.Port(); p != "" {
		return s.Endpoint.Host
	}
	port := "443"
	if s.Endpoint.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(s.Endpoint.Hostname(), port)
}

// bucketRE is S3's bucket naming rule: 3-63 lower-case letters, digits,
// dots and hyphens, beginning and ending with a letter or digit.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// segmentRE is one segment of a prefix: characters that need no escaping
// anywhere S3 keys go (URLs, XML, file names of POSIX-backed stores).
var segmentRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ParseS3URL checks s3://bucket[/prefix]: a valid bucket name, a prefix of
// segments of letters, digits, '.', '_' and '-' (not '.' or '..'), and no
// user, port, query or fragment. It returns the bucket and the prefix
// (see S3.Prefix).
func ParseS3URL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("bad url %q: %w", s, err)
	}
	if u.Scheme != SchemeS3 {
		return "", "", fmt.Errorf("unsupported scheme %q (want s3)", u.Scheme)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q: want s3://bucket/prefix (the server goes in endpoint, the credentials in access_key_file and secret_key_file)", s)
	}
	if !bucketRE.MatchString(u.Host) || strings.Contains(u.Host, "..") {
		return "", "", fmt.Errorf("%q: bad bucket name %q (want 3-63 lower-case letters, digits, '.' and '-')", s, u.Host)
	}
	p := strings.Trim(u.Path, "/")
	if p == "" {
		return u.Host, "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if !segmentRE.MatchString(seg) || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("%q: bad prefix segment %q (want letters, digits, '.', '_' and '-', no empty, '.' or '..' segments)", s, seg)
		}
	}
	return u.Host, p + "/", nil
}

// ParseEndpoint checks an S3 endpoint: http:// or https://host[:port],
// with no user, path, query or fragment.
func ParseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("bad endpoint %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http:// or https:// url (e.g. https://s3.example.com)", s)
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want scheme://host[:port] only (the bucket and prefix go in url)", s)
	}
	u.Path = ""
	return u, nil
}

// ParseS3 parses an S3 target's url and endpoint.
func ParseS3(rawURL, endpoint string) (S3, error) {
	b, p, err := ParseS3URL(rawURL)
	if err != nil {
		return S3{}, err
	}
	e, err := ParseEndpoint(endpoint)
	if err != nil {
		return S3{}, err
	}
	return S3{Bucket: b, Prefix: p, Endpoint: e}, nil
}
