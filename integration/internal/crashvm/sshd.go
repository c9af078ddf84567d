// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// writeSSHD makes the test's sshd in dir: its host key, our client key (the
// image's identity) as its only authorized key, a known_hosts pinning the
// host key under the address the guest uses for each SFTP target, and
// sshd_config. The guest uploads to dir/crash.
func writeSSHD(dir string, targets []Target) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "crash"), 0o700); err != nil {
		return err
	}
	host, err := writeKey(filepath.Join(dir, "host_key"))
	if err != nil {
		return err
	}
	client, err := writeKey(filepath.Join(dir, "id_ed25519"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), client, 0o600); err != nil {
		return err
	}
	var kh strings.Builder
	for _, t := range targets {
		if t.SFTPPort != 0 {
			fmt.Fprintf(&kh, "[10.0.2.2]:%d %s", t.SFTPPort, host)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(kh.String()), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_key
AuthorizedKeysFile %[2]s/authorized_keys
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
`, SSHPort, dir)
	return os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o644)
}

// writeKey writes a new ed25519 private key in OpenSSH's format (mode 0600:
// sshd refuses others) and returns its public key, authorized_keys style.
func writeKey(path string) ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "ukdump e2e")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return ssh.MarshalAuthorizedKey(sp), nil
}

// startSSHD starts OpenSSH's sshd from dir in the foreground, logging to
// dir/sshd.log, and waits until it accepts connections. It must run on the
// thread of the run's network namespace: sshd listens there, and the dial
// that waits for it is made there. stop ends it.
func startSSHD(ctx context.Context, dir string) (stop func() error, err error) {
	// sshd's privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "/usr/sbin/sshd", "-D", "-f", filepath.Join(dir, "sshd_config"), "-E", filepath.Join(dir, "sshd.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop = func() error {
		cmd.Process.Kill()
		<-done
		return nil
	}
	addr := fmt.Sprintf("127.0.0.1:%d", SSHPort)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return stop, nil
		}
		select {
		case werr := <-done:
			return nil, fmt.Errorf("sshd exited (%v) before listening on %s: see %s", werr, addr, filepath.Join(dir, "sshd.log"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.Join(fmt.Errorf("sshd does not listen on %s after 10s: see %s", addr, filepath.Join(dir, "sshd.log")), err)
		}
	}
}
