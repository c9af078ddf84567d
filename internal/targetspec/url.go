// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package targetspec

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// The schemes of a network target.
const (
	SchemeSFTP = "sftp"
	// SchemeSCP also uses SFTP, falling back to the legacy scp protocol
	// only when the server has no SFTP subsystem.
	SchemeSCP = "scp"
)

// DefaultPort is the SSH port of a url without one.
const DefaultPort = 22

// URL is a parsed network target url.
type URL struct {
	// Scheme is SchemeSFTP or SchemeSCP.
	Scheme string
	// User is the login name; there is no password.
	User string
	// Host is the server's name or address, without brackets ("2001:db8::1").
	Host string
	// Port is the SSH port: DefaultPort unless the url gives one.
	Port int
	// Path is the url's path: absolute, without '..'; /~/dir is dir under
	// the login directory (see Dir).
	Path string
}

// ParseURL parses and checks sftp://user@host[:port]/path or scp://…: a
// user and a host, no password, a port in 1-65535, an absolute path without
// '..', and no query or fragment.
func ParseURL(s string) (URL, error) {
	u, port, err := parse(s)
	if err != nil {
		return URL{}, err
	}
	return URL{Scheme: u.Scheme, User: u.User.Username(), Host: u.Hostname(), Port: port, Path: u.Path}, nil
}

// parse is ParseURL's checks; it returns the url and its port. (Apart from
// ParseURL, which returns a URL once rather than at every error, it keeps the
// capture busybox smaller.)
func parse(s string) (*url.URL, int, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, 0, fmt.Errorf("bad url %q: %w", s, err)
	}
	switch u.Scheme {
	case SchemeSFTP, SchemeSCP:
	default:
		return nil, 0, fmt.Errorf("unsupported scheme %q (want %s, %s)", u.Scheme, SchemeSFTP, SchemeSCP)
	}
	if u.Hostname() == "" || u.User.Username() == "" {
		return nil, 0, fmt.Errorf("%q needs user@host", s)
	}
	if _, ok := u.User.Password(); ok {
		return nil, 0, fmt.Errorf("%q holds a password: passwords are not supported (use identity)", s)
	}
	port := DefaultPort
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, 0, fmt.Errorf("%q: bad port %q (want 1-65535)", s, p)
		}
	}
	if !strings.HasPrefix(u.Path, "/") || strings.Contains(u.Path, "..") {
		return nil, 0, fmt.Errorf("%q needs an absolute path without '..' after the host (e.g. sftp://kdump@dumphost/var/crash; /~/dir is under the login directory)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, 0, fmt.Errorf("%q: unexpected query or fragment", s)
	}
	return u, port, nil
}

// Addr is host:port, for dialling.
func (u URL) Addr() string { return net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) }

// Dir is the remote directory: Path cleaned, and relative to the login
// directory for /~/dir ("." for /~ itself).
func (u URL) Dir() string {
	switch {
	case u.Path == "" || u.Path == "/~" || u.Path == "/~/":
		return "."
	case strings.HasPrefix(u.Path, "/~/"):
		return path.Clean(u.Path[3:])
	}
	return path.Clean(u.Path)
}
