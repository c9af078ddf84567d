// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
	"github.com/ukdump/ukdump/internal/targetspec"
)

// sshFiles puts each network target's identity and known_hosts (host paths in
// the config) into the image as layout.TargetIdentity and TargetKnownHosts,
// mode 0600, and points the image's config at them. A target whose host has no
// known_hosts entry is refused unless insecure_ignore_host_key is set; one
// without known_hosts that sets it gets a warning.
func sshFiles(cfg *config.Config) (files []File, warnings []string, err error) {
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		if !t.IsNetwork() || t.IsS3() {
			continue
		}
		field := fmt.Sprintf("target[%d]", i)
		if t.Identity == "" {
			return nil, nil, fmt.Errorf("%s.identity: a network target needs an OpenSSH private key (ssh-keygen -t ed25519 -N '' -f /etc/ukdump/id_ed25519)", field)
		}
		key, err := os.ReadFile(t.Identity)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.identity: %w", field, err)
		}
		if _, err := ssh.ParsePrivateKey(key); err != nil {
			return nil, nil, fmt.Errorf("%s.identity: %s: %w (want an unencrypted OpenSSH private key: ed25519, ecdsa or rsa)", field, t.Identity, err)
		}
		t.Identity = "/" + layout.TargetIdentity(i)
		files = append(files, File{Data: key, Dst: t.Identity, Mode: 0o600})

		u, err := targetspec.ParseURL(t.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.url: %w", field, err)
		}
		hostport := u.Addr()
		if t.KnownHosts == "" {
			if !t.InsecureIgnoreHostKey {
				return nil, nil, fmt.Errorf("%s.known_hosts: needed to check %s's host key (ssh-keyscan -p %d %s >> known_hosts), or set insecure_ignore_host_key = true", field, hostport, u.Port, u.Host)
			}
			warnings = append(warnings, fmt.Sprintf("%s: insecure_ignore_host_key: the host key of %s will not be checked", field, hostport))
			continue
		}
		kh, err := os.ReadFile(t.KnownHosts)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.known_hosts: %w", field, err)
		}
		if !t.InsecureIgnoreHostKey {
			if err := hasHostKey(t.KnownHosts, hostport); err != nil {
				return nil, nil, fmt.Errorf("%s.known_hosts: %w", field, err)
			}
		}
		t.KnownHosts = "/" + layout.TargetKnownHosts(i)
		files = append(files, File{Data: kh, Dst: t.KnownHosts, Mode: 0o600})
	}
	return files, warnings, nil
}

// hasHostKey reports whether known_hosts has an entry for hostport: checking
// a throwaway key must fail with a key mismatch, not an unknown host.
func hasHostKey(file, hostport string) error {
	cb, err := knownhosts.New(file)
	if err != nil {
		return err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	err = cb(hostport, addr, probe)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) && len(ke.Want) > 0 {
		return nil
	}
	return fmt.Errorf("%s has no entry for %s (add it: ssh-keyscan -p PORT HOST >> %s), or set insecure_ignore_host_key = true", file, hostport, file)
}
