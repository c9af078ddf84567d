// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !ukdump_nonet

package target

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ukdump/ukdump/internal/targetspec"
)

// Errors of an SSH target that no retry can cure; check them with errors.Is.
var (
	// ErrHostKeyUnknown is returned when the server's host key is not in known_hosts.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyChanged is returned when known_hosts holds another key for the server (or the key is revoked).
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrAuth is returned when the server refuses the identity.
	ErrAuth = errors.New("server refused the identity")
	// ErrNoSFTP is returned for an sftp:// URL when the server has no SFTP subsystem.
	ErrNoSFTP = errors.New("server has no SFTP subsystem")
)

// Defaults of the SSH fields left zero.
const (
	DefaultSSHTimeout   = 30 * time.Second
	DefaultSSHKeepAlive = 5 * time.Second
	DefaultSSHReconnect = 2 * time.Minute
)

// keepAliveMisses is how many keepalive intervals without an answer end a connection.
const keepAliveMisses = 4

// SSH is a target reached over SSH: sftp://user@host[:port]/path, or
// scp://user@host[:port]/path, which also uses SFTP (as OpenSSH's scp does
// today) and falls back to the legacy scp protocol only when the server has
// no SFTP subsystem.
//
// The remote layout is the disk's: <path>/<host>-<crash time>/ holding
// vmcore.incomplete (renamed to vmcore when complete), manifest.json and
// ukdump.log, directories 0700 and files 0600.
//
// A connection that drops while a file is written is made again (with
// backoff, within Reconnect and the context given to Open) and the file is
// continued where the server's acknowledgements say it is intact; see
// sftpFile.Write.
type SSH struct {
	// URL is sftp://user@host[:port]/path or scp://user@host[:port]/path.
	// The path is absolute; /~/dir is dir under the user's login directory.
	URL string
	// Identity is the OpenSSH private key file (ed25519, ecdsa or rsa,
	// without a passphrase). There is no password authentication.
	Identity string
	// KnownHosts is the known_hosts file that must hold the server's host key.
	KnownHosts string
	// InsecureIgnoreHostKey accepts any host key (logged with its fingerprint).
	InsecureIgnoreHostKey bool
	// Timeout bounds each connection attempt: TCP connect, SSH handshake,
	// authentication and starting SFTP (default DefaultSSHTimeout).
	Timeout time.Duration
	// KeepAlive is the interval of keepalive requests; a connection whose
	// server answers none for 4 intervals is closed, which fails or resumes
	// whatever waited on it (default DefaultSSHKeepAlive).
	KeepAlive time.Duration
	// Reconnect bounds how long a dropped connection is retried before the
	// operation fails (default DefaultSSHReconnect; never past the deadline
	// of the context given to Open).
	Reconnect time.Duration
	// Logf logs connections, fallbacks and warnings (default: nothing).
	Logf func(format string, args ...any)
}

func (s *SSH) String() string { return s.URL }

func (s *SSH) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// sshURL is a target url and its remote directory.
type sshURL struct {
	targetspec.URL
	// dir is the remote directory: absolute, or relative to the login directory.
	dir string
}

func (u sshURL) addr() string { return u.Addr() }

// Open connects, starts SFTP (or the legacy scp fallback) and makes the
// target directory. ctx bounds this and every reconnection later.
func (s *SSH) Open(ctx context.Context) (Dir, error) {
	tu, err := targetspec.ParseURL(s.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u := sshURL{URL: tu, dir: tu.Dir()}
	r := &sshRemote{s: s, u: u, ctx: ctx}
	if err := r.setup(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	start := time.Now()
	c, err := r.conn()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if c.sftp == nil {
		s.logf("connected to %s in %s; it has no SFTP subsystem: using the legacy scp protocol", u.addr(), time.Since(start).Round(time.Millisecond))
		d := &scpDir{r: r, root: u.dir}
		if err := d.open(); err != nil {
			r.close()
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		return d, nil
	}
	d := &sftpDir{r: r, root: u.dir}
	_, d.posixRename = c.sftp.HasExtension("posix-rename@openssh.com")
	_, d.statvfs = c.sftp.HasExtension("statvfs@openssh.com")
	v, ok := c.sftp.HasExtension("fsync@openssh.com")
	d.fsync = ok && v == "1"
	var missing []string
	for _, e := range []struct {
		ok   bool
		name string
	}{{d.posixRename, "posix-rename"}, {d.fsync, "fsync"}, {d.statvfs, "statvfs"}} {
		if !e.ok {
			missing = append(missing, e.name+"@openssh.com")
		}
	}
	s.logf("connected to %s (sftp) in %s", u.addr(), time.Since(start).Round(time.Millisecond))
	if len(missing) > 0 {
		s.logf("note: %s does not offer %s", u.addr(), strings.Join(missing, ", "))
	}
	err = d.do("mkdir -p "+u.dir, func(c *sshConn, _ int) error {
		sc := c.sftp
		if err := sc.MkdirAll(u.dir); err != nil {
			return err
		}
		fi, err := sc.Stat(u.dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", u.dir)
		}
		return nil
	})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("%s: make %s: %w", s, u.dir, err)
	}
	return d, nil
}

// sshRemote is the connection to the server, made again when it drops.
type sshRemote struct {
	s   *SSH
	u   sshURL
	ctx context.Context
	cfg ssh.ClientConfig
	// known checks host keys against known_hosts (nil with InsecureIgnoreHostKey).
	known ssh.HostKeyCallback
	// probe is a key no server has, to learn from known_hosts which key
	// types it holds for the server.
	probe ssh.PublicKey
	// keyFP describes the identity in errors.
	keyFP string

	// legacy is set when the server has no SFTP subsystem (scp:// only).
	legacy atomic.Bool

	// mu guards cur and closed; it is held while (re)connecting.
	mu     sync.Mutex
	cur    *sshConn
	closed bool
}

// sshConn is one SSH connection.
type sshConn struct {
	nc     net.Conn
	client *ssh.Client
	// sftp is the SFTP client; nil in legacy scp mode.
	sftp *sftp.Client
	// dead is closed when the connection has ended.
	dead chan struct{}
}

func (c *sshConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// close closes the connection first: closing SFTP waits for its reader,
// which a dead server would never end.
func (c *sshConn) close() {
	c.client.Close() // closes nc; an error only says it was closed already
	if c.sftp != nil {
		c.sftp.Close() // its connection is gone: the error says nothing more
	}
}

// setup reads the identity and known_hosts: mistakes here are found before
// any connection.
func (r *sshRemote) setup() error {
	s := r.s
	if s.Identity == "" {
		return errors.New("no identity (an OpenSSH private key file) configured")
	}
	pem, err := os.ReadFile(s.Identity)
	if err != nil {
		return fmt.Errorf("read identity: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return fmt.Errorf("identity %s is protected by a passphrase, which the capture kernel cannot ask for: use a key without one (ssh-keygen -t ed25519 -N '' -f …)", s.Identity)
	}
	if err != nil {
		return fmt.Errorf("identity %s: %w (want an OpenSSH private key: ed25519, ecdsa or rsa)", s.Identity, err)
	}
	r.keyFP = fmt.Sprintf("%s %s", signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()))
	if !s.InsecureIgnoreHostKey {
		if s.KnownHosts == "" {
			return errors.New("no known_hosts configured (set known_hosts, or insecure_ignore_host_key = true to accept any host key)")
		}
		r.known, err = knownhosts.New(s.KnownHosts)
		if err != nil {
			return fmt.Errorf("read known_hosts: %w (add the server's key, e.g. ssh-keyscan -p %d %s >> %s, and rebuild the image)", err, r.u.Port, r.u.Host, s.KnownHosts)
		}
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("make probe key: %w", err)
		}
		if r.probe, err = ssh.NewPublicKey(pub); err != nil {
			return fmt.Errorf("make probe key: %w", err)
		}
	}
	r.cfg = ssh.ClientConfig{
		User:            r.u.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: r.checkHostKey,
	}
	return nil
}

// checkHostKey accepts the server's key if known_hosts has it, and explains
// what to do if not.
func (r *sshRemote) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	if r.s.InsecureIgnoreHostKey {
		r.s.logf("warning: insecure_ignore_host_key: accepting %s host key %s of %s without checking it", key.Type(), fp, hostname)
		return nil
	}
	err := r.known(hostname, remote, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return fmt.Errorf("%w: %s offers %s key %s, which %s:%d marks @revoked; refusing to connect",
			ErrHostKeyChanged, hostname, key.Type(), fp, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fmt.Errorf("%w: %s offers %s key %s, which is not in %s; refusing to connect "+
			"(check that it is the server's key, e.g. ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the server, "+
			"then add it to known_hosts, e.g. ssh-keyscan -p %d %s >> %s, and rebuild the image)",
			ErrHostKeyUnknown, hostname, key.Type(), fp, r.s.KnownHosts, keyFileKind(key), r.u.Port, r.u.Host, r.s.KnownHosts)
	case errors.As(err, &ke):
		var have []string
		for _, w := range ke.Want {
			have = append(have, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
		return fmt.Errorf("%w: %s offers %s key %s, but known_hosts has %s for it; refusing to connect "+
			"(someone may be intercepting the connection; if the server's key was really replaced, "+
			"put the new key in %s and rebuild the image)",
			ErrHostKeyChanged, hostname, key.Type(), fp, strings.Join(have, ", "), r.s.KnownHosts)
	default:
		return fmt.Errorf("check host key %s %s of %s: %w", key.Type(), fp, hostname, err)
	}
}

// keyFileKind names the key in /etc/ssh/ssh_host_<kind>_key.pub.
func keyFileKind(key ssh.PublicKey) string {
	switch t := key.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	default:
		return "*"
	}
}

// hostKeyAlgorithms lists the algorithms of the keys known_hosts holds for
// the server, so that a server offering several keys is asked for one we
// can check (nil: let the server choose).
func (r *sshRemote) hostKeyAlgorithms(hostport string, remote net.Addr) []string {
	if r.known == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := r.known(hostport, remote, r.probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !strings.Contains(strings.Join(algos, ","), x) {
				algos = append(algos, x)
			}
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// dial makes one connection within Timeout: TCP, SSH, and SFTP unless the
// server is known to lack it.
func (r *sshRemote) dial() (*sshConn, error) {
	ctx, cancel := context.WithTimeoutCause(r.ctx, durationOr(r.s.Timeout, DefaultSSHTimeout),
		fmt.Errorf("connect to %s: timed out after %s", r.u.addr(), durationOr(r.s.Timeout, DefaultSSHTimeout)))
	defer cancel()
	addr := r.u.addr()
	nc, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// The handshake and SFTP start read and write nc: a deadline ends them
	// if the server stops answering, and the context if it is cancelled.
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline) // an error would show on the first read or write
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	c, err := r.handshake(nc, addr)
	if !stop() || ctx.Err() != nil {
		if c != nil {
			c.close()
		}
		nc.Close() // closed already if c was made; either way the timeout is the news
		if err != nil {
			return nil, fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return nil, context.Cause(ctx)
	}
	if err != nil {
		nc.Close() // the error is the news; closing an unused connection says nothing
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	go r.watch(c)
	return c, nil
}

func (r *sshRemote) handshake(nc net.Conn, addr string) (*sshConn, error) {
	cfg := r.cfg
	cfg.HostKeyAlgorithms = r.hostKeyAlgorithms(addr, nc.RemoteAddr())
	cc, chans, reqs, err := ssh.NewClientConn(nc, addr, &cfg)
	if err != nil {
		if strings.Contains(err.Error(), "unable to authenticate") {
			// x/crypto/ssh has no error type for this; its message is stable.
			return nil, fmt.Errorf("%w: %s refused key %s (%s) for user %q; add its public key (ssh-keygen -y -f %s) to ~%s/.ssh/authorized_keys on the server: %w",
				ErrAuth, addr, r.keyFP, r.s.Identity, r.u.User, r.s.Identity, r.u.User, err)
		}
		return nil, fmt.Errorf("ssh to %s: %w", addr, err)
	}
	c := &sshConn{nc: nc, client: ssh.NewClient(cc, chans, reqs), dead: make(chan struct{})}
	go func() {
		c.client.Wait() // it ends with the connection; why is not ours to report
		close(c.dead)
	}()
	if r.legacy.Load() {
		return c, nil
	}
	sc, err := startSFTP(c.client)
	if errors.Is(err, ErrNoSFTP) && r.u.Scheme == targetspec.SchemeSCP {
		r.legacy.Store(true)
		return c, nil
	}
	if err != nil {
		c.close()
		if errors.Is(err, ErrNoSFTP) {
			return nil, fmt.Errorf("%s: %w (add \"Subsystem sftp internal-sftp\" to its sshd_config, or use an scp:// url for the legacy scp protocol)", addr, err)
		}
		return nil, fmt.Errorf("start sftp on %s: %w", addr, err)
	}
	c.sftp = sc
	return c, nil
}

// startSFTP opens a session channel and asks for the sftp subsystem; a
// refusal is ErrNoSFTP (the request answered "no", the connection alive).
func startSFTP(client *ssh.Client) (*sftp.Client, error) {
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"}))
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("request subsystem sftp: %w", err)
	}
	if !ok {
		ch.Close()
		return nil, ErrNoSFTP
	}
	// sftp-server rarely writes to stderr; read it so it cannot stall the channel.
	go io.Copy(io.Discard, ch.Stderr())
	// Concurrent writes: WriteAt sends a piece as up to 64 requests in
	// flight (see sftpFile.Write for what that means for resuming).
	sc, err := sftp.NewClientPipe(ch, ch, sftp.UseConcurrentWrites(true))
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("sftp init: %w", err)
	}
	return sc, nil
}

// watch sends keepalives and closes the connection when the server stops
// answering them: every operation waiting on it then fails (and resumes).
func (r *sshRemote) watch(c *sshConn) {
	iv := durationOr(r.s.KeepAlive, DefaultSSHKeepAlive)
	t := time.NewTicker(iv)
	defer t.Stop()
	last := time.Now()
	answered := make(chan struct{}, 1)
	waiting := false
	for {
		select {
		case <-c.dead:
			return
		case <-answered:
			waiting, last = false, time.Now()
		case <-t.C:
			if time.Since(last) >= keepAliveMisses*iv {
				r.s.logf("warning: %s answered no keepalive for %s: closing the connection", r.u.addr(), time.Since(last).Round(time.Millisecond))
				c.close()
				return
			}
			if !waiting {
				waiting = true
				go func() {
					// Any answer, even "unknown request", shows the server is alive.
					if _, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil); err == nil {
						answered <- struct{}{}
					}
				}()
			}
		}
	}
}

// conn returns the connection, making one if there is none.
func (r *sshRemote) conn() (*sshConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("target closed")
	}
	if r.cur != nil {
		return r.cur, nil
	}
	c, err := r.dial()
	if err != nil {
		return nil, err
	}
	r.cur = c
	return c, nil
}

// redial replaces the connection old, which failed with cause, retrying
// with backoff until deadline or the end of the context given to Open.
// Errors no retry can cure (host key, authentication) end it at once.
func (r *sshRemote) redial(old *sshConn, cause error, deadline time.Time) (*sshConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("target closed")
	}
	if r.cur != nil && r.cur != old {
		return r.cur, nil // someone else has made a new one
	}
	r.cur = nil
	if old != nil {
		old.close()
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if r.ctx.Err() != nil {
			return nil, fmt.Errorf("reconnect to %s after %v: %w", r.u.addr(), cause, context.Cause(r.ctx))
		}
		c, err := r.dial()
		if err == nil {
			r.cur = c
			r.s.logf("reconnected to %s (attempt %d) after: %v", r.u.addr(), attempt, cause)
			return c, nil
		}
		if errors.Is(err, ErrHostKeyUnknown) || errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrAuth) || errors.Is(err, ErrNoSFTP) {
			return nil, err
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("reconnect to %s: gave up after %d attempts: %w (the connection was lost: %v)", r.u.addr(), attempt, err, cause)
		}
		r.s.logf("reconnect to %s (attempt %d): %v; trying again in %s", r.u.addr(), attempt, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// reconnectDeadline is when reconnecting after a loss now gives up.
func (r *sshRemote) reconnectDeadline() time.Time {
	return time.Now().Add(durationOr(r.s.Reconnect, DefaultSSHReconnect))
}

func (r *sshRemote) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
}

// lostConn tells whether err means the connection c was lost (the
// operation may be retried on a new one) rather than the server refusing it.
func lostConn(err error, c *sshConn) bool {
	var se *sftp.StatusError
	if err == nil || errors.As(err, &se) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return false
	}
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || (c != nil && c.isDead())
}
