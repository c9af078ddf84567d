// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build linux

package target

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// sshd is an OpenSSH server started for one test on 127.0.0.1, with its
// own host key, config and authorized key. The "remote" directory is
// local: the tests look at what the server wrote.
type sshd struct {
	t    testing.TB
	dir  string // the server's files
	port int
	// hostKey is the server's public host key.
	hostKey ssh.PublicKey
	// root is the remote directory the tests save under.
	root string
	// identity is the client's private key file, in authorized_keys.
	identity string
	// knownHosts lists the server's key for [127.0.0.1]:port.
	knownHosts string
	mu         sync.Mutex
	out        bytes.Buffer // the server's log
}

type sshdOptions struct {
	// noSFTP leaves out the Subsystem line: only the legacy scp protocol works.
	noSFTP bool
}

// newKey returns an ed25519 key and its private key file's contents.
func newKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return marshalKey(t, priv, nil)
}

// marshalKey returns a signer and the OpenSSH private key file for priv,
// encrypted with passphrase if not nil.
func marshalKey(t testing.TB, priv any, passphrase []byte) (ssh.Signer, []byte) {
	t.Helper()
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase != nil {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", passphrase)
	} else {
		blk, err = ssh.MarshalPrivateKey(priv, "test")
	}
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(blk)
}

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSSHD starts sshd -D -e and waits for its "Server listening" line.
func startSSHD(t testing.TB, o sshdOptions) *sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("sshd not found (%v): run scripts/deps.sh (it installs openssh-server)", err)
	}
	// sshd wants its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd needs /run/sshd: %v (the tests run as root: run them as root)", err)
	}
	s := &sshd{t: t, dir: t.TempDir(), root: t.TempDir()}
	hostSigner, hostPEM := newKey(t)
	s.hostKey = hostSigner.PublicKey()
	writeFile(t, filepath.Join(s.dir, "host_ed25519"), hostPEM)
	clientSigner, clientPEM := newKey(t)
	s.identity = writeFile(t, filepath.Join(s.dir, "id_ed25519"), clientPEM)
	writeFile(t, filepath.Join(s.dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()))

	for attempt := 0; ; attempt++ {
		s.port = freePort(t)
		cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host_ed25519
AuthorizedKeysFile %s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile %s/sshd.pid
LogLevel INFO
`, s.port, s.dir, s.dir, s.dir)
		if !o.noSFTP {
			cfg += "Subsystem sftp internal-sftp\n"
		}
		conf := writeFile(t, filepath.Join(s.dir, "sshd_config"), []byte(cfg))
		err := s.run(bin, conf)
		if err == nil {
			break
		}
		if attempt == 4 {
			t.Fatalf("start sshd: %v\n%s", err, s.log())
		}
		t.Logf("start sshd on port %d: %v; trying another port", s.port, err)
	}
	line := knownhosts.Line([]string{fmt.Sprintf("127.0.0.1:%d", s.port)}, s.hostKey)
	s.knownHosts = writeFile(t, filepath.Join(s.dir, "known_hosts"), []byte(line+"\n"))
	return s
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts sshd and returns when it listens, or with why it will not.
func (s *sshd) run(bin, conf string) error {
	cmd := exec.Command(bin, "-D", "-e", "-f", conf)
	// Its own process group, so that its session children are killed at the
	// end too; and killed if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	s.t.Cleanup(func() {
		syscall.Kill(-pid, syscall.SIGTERM) // the group may be gone already
		cmd.Wait()                          // killed: its status says nothing
		if s.t.Failed() {
			s.t.Logf("sshd log:\n%s", s.log())
		}
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d", s.port)
		for sc.Scan() {
			s.mu.Lock()
			fmt.Fprintln(&s.out, sc.Text())
			s.mu.Unlock()
			if strings.Contains(sc.Text(), listening) {
				ready <- nil
			}
		}
		ready <- errors.New("sshd exited")
	}()
	select {
	case err := <-ready:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("sshd did not listen within 10s")
	}
}

func (s *sshd) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// testLog collects a target's log lines and passes them to t.Logf until
// the test ends.
type testLog struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	done  bool
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	l.lines = append(l.lines, msg)
	if !l.done {
		l.t.Logf("target: %s", msg)
	}
}

// has reports whether a line contains all of subs.
func (l *testLog) has(subs ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// target returns an SSH target for this server.
func (s *sshd) target(scheme string, l *testLog) *SSH {
	return &SSH{
		URL:      fmt.Sprintf("%s://root@127.0.0.1:%d%s", scheme, s.port, s.root),
		Identity: s.identity, KnownHosts: s.knownHosts, Logf: l.Logf,
		Timeout: 10 * time.Second, Reconnect: 20 * time.Second,
	}
}

func open(t testing.TB, tg Target) Dir {
	t.Helper()
	d, err := tg.Open(context.Background())
	if err != nil {
		t.Fatalf("%s.Open() = %v", tg, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeChunks writes data to f in chunks of size chunk through one buffer
// that is overwritten after each Write, as the collector does.
func writeChunks(t testing.TB, f File, data []byte, chunk int) {
	t.Helper()
	buf := make([]byte, chunk)
	for off := 0; off < len(data); {
		n := copy(buf, data[off:])
		wn, err := f.Write(buf[:n])
		if err != nil || wn != n {
			t.Fatalf("Write(%d bytes at %d) = %d, %v; want %d, nil", n, off, wn, err, n)
		}
		for i := range buf {
			buf[i] = 0xee // a target that kept a reference would now send garbage
		}
		off += n
	}
}

// save does what capture does with a target: a dump directory, vmcore
// written as vmcore.incomplete, synced, closed, renamed and the directory
// synced, then manifest.json.
func save(t *testing.T, d Dir, name string, data []byte, chunk int) {
	t.Helper()
	if err := d.Mkdir(name); err != nil {
		t.Fatalf("Mkdir(%q) = %v", name, err)
	}
	f, err := d.Create(name + "/vmcore.incomplete")
	if err != nil {
		t.Fatalf("Create(vmcore.incomplete) = %v", err)
	}
	if s, ok := f.(Sizer); ok {
		// As collect does: the legacy scp protocol wants the size first.
		if err := s.SetSize(int64(len(data))); err != nil {
			t.Fatalf("SetSize(%d) = %v", len(data), err)
		}
	}
	writeChunks(t, f, data, chunk)
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := d.Rename(name+"/vmcore.incomplete", name+"/vmcore"); err != nil {
		t.Fatalf("Rename() = %v", err)
	}
	if err := d.SyncDir(name); err != nil {
		t.Fatalf("SyncDir(%q) = %v", name, err)
	}
	m, err := d.Create(name + "/manifest.json")
	if err != nil {
		t.Fatalf("Create(manifest.json) = %v", err)
	}
	if _, err := m.Write([]byte(`{"complete": true}` + "\n")); err != nil {
		t.Fatalf("Write(manifest.json) = %v", err)
	}
	if err := m.Sync(); err != nil {
		t.Fatalf("Sync(manifest.json) = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close(manifest.json) = %v", err)
	}
	if err := d.SyncDir(name); err != nil {
		t.Fatalf("SyncDir(%q) = %v", name, err)
	}
}

// checkSaved checks the dump directory on the server's side.
func checkSaved(t *testing.T, root, name string, data []byte) {
	t.Helper()
	dir := filepath.Join(root, name)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s/%s has mode %v, want -rw-------", dir, e.Name(), fi.Mode())
		}
	}
	if diff := cmp.Diff([]string{"manifest.json", "vmcore"}, names); diff != "" {
		t.Errorf("files in %s (-want, +got):\n%s", dir, diff)
	}
	got, err := os.ReadFile(filepath.Join(dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s/vmcore: %d bytes that differ from the %d written (first difference at %d)", dir, len(got), len(data), firstDiff(got, data))
	}
	if m, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err != nil || string(m) != "{\"complete\": true}\n" {
		t.Errorf("manifest.json = %q, %v; want the one written", m, err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSSHSave(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	for _, scheme := range []string{"sftp", "scp"} {
		t.Run(scheme, func(t *testing.T) {
			l := newTestLog(t)
			tg := s.target(scheme, l)
			tg.URL += "/" + scheme + "/dumps" // made by Open
			d := open(t, tg)
			if _, ok := d.(*sftpDir); !ok {
				t.Errorf("Open() = %T, want *sftpDir: a server with SFTP is used with SFTP", d)
			}
			data := randomBytes(t, 3<<20+12345)
			save(t, d, "h-20240101T000000Z", data, 1<<20+7)
			checkSaved(t, filepath.Join(s.root, scheme, "dumps"), "h-20240101T000000Z", data)
			if err := d.Mkdir("h-20240101T000000Z"); !errors.Is(err, fs.ErrExist) {
				t.Errorf("Mkdir(existing) = %v, want fs.ErrExist", err)
			}
			// Create truncates, as on disk.
			f, err := d.Create("h-20240101T000000Z/manifest.json")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(s.root, scheme, "dumps", "h-20240101T000000Z", "manifest.json")); string(got) != "{}" {
				t.Errorf("manifest.json after Create+Write = %q, want %q", got, "{}")
			}
			for _, bad := range []string{"../x", "/etc", "a/../../b"} {
				if err := d.Mkdir(bad); err == nil {
					t.Errorf("Mkdir(%q) = nil, want an error", bad)
				}
			}
		})
	}
}

// TestSSHWithoutExtensions checks the fallbacks for servers that do not
// offer OpenSSH's extensions: rename as remove+rename, no fsync, unknown
// free space.
func TestSSHWithoutExtensions(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	l := newTestLog(t)
	d := open(t, s.target("sftp", l))
	sd, ok := d.(*sftpDir)
	if !ok {
		t.Fatalf("Open() = %T, want *sftpDir", d)
	}
	sd.posixRename, sd.fsync, sd.statvfs = false, false, false
	data := randomBytes(t, 100<<10)
	save(t, d, "h-20240101T000000Z", data, 4096)
	// Rename over an existing file, which plain SFTP rename refuses.
	f, err := d.Create("h-20240101T000000Z/vmcore.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename("h-20240101T000000Z/vmcore.incomplete", "h-20240101T000000Z/vmcore"); err != nil {
		t.Errorf("Rename(over an existing file) = %v, want nil", err)
	}
	checkSaved(t, s.root, "h-20240101T000000Z", data)
	if got, err := d.Free(); got != math.MaxInt64 || err != nil {
		t.Errorf("Free() without statvfs = %d, %v; want %d, nil", got, err, int64(math.MaxInt64))
	}
	for _, w := range []string{"no posix-rename@openssh.com", "no fsync@openssh.com", "no statvfs@openssh.com"} {
		if !l.has(w) {
			t.Errorf("log %q: want a note with %q", l.lines, w)
		}
	}
}

func TestSSHRetention(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	for _, n := range []string{"h-20240101T000000Z", "h-20240102T000000Z.1", "h-20240103T000000Z", "g-20200101T000000Z", "notes"} {
		if err := os.MkdirAll(filepath.Join(s.root, n, "sub", "deeper"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(s.root, n, "vmcore"), []byte("core"))
		writeFile(t, filepath.Join(s.root, n, "sub", "deeper", "x"), []byte("x"))
	}
	writeFile(t, filepath.Join(s.root, "h-20230101T000000Z"), []byte("a file, not a dump"))
	if err := os.Symlink("/", filepath.Join(s.root, "h-20220101T000000Z")); err != nil {
		t.Fatal(err)
	}
	d := open(t, s.target("sftp", newTestLog(t)))
	names, err := d.List()
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"g-20200101T000000Z", "h-20240101T000000Z", "h-20240102T000000Z.1", "h-20240103T000000Z", "notes"}, names); diff != "" {
		t.Errorf("List() (-want, +got):\n%s", diff)
	}
	// Two hosts share the directory: host h's new dump is h-20240103T000000Z.
	removed, err := Prune(d, Retention{Host: "h", Keep: 2, Exclude: "h-20240103T000000Z"})
	if err != nil {
		t.Fatalf("Prune(2) = %v", err)
	}
	if diff := cmp.Diff([]string{"h-20240101T000000Z"}, removed); diff != "" {
		t.Errorf("Prune(2) removed (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"g-20200101T000000Z", "h-20220101T000000Z", "h-20230101T000000Z", "h-20240102T000000Z.1", "h-20240103T000000Z", "notes"}, listDir(t, s.root)); diff != "" {
		t.Errorf("after Prune(2), the server has (-want, +got):\n%s", diff)
	}
	if err := d.RemoveAll(""); err == nil {
		t.Errorf("RemoveAll(\"\") = nil, want a refusal")
	}
	if err := d.RemoveAll("no-such-dir"); err != nil {
		t.Errorf("RemoveAll(no-such-dir) = %v, want nil (as os.RemoveAll)", err)
	}
}

func TestSSHFree(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	for _, tt := range []struct {
		name string
		opts sshdOptions
	}{{"statvfs", sshdOptions{}}, {"legacy df", sshdOptions{noSFTP: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := s
			if tt.opts.noSFTP {
				srv = startSSHD(t, tt.opts)
			}
			d := open(t, srv.target("scp", newTestLog(t)))
			got, err := d.Free()
			if err != nil {
				t.Fatalf("Free() = %v", err)
			}
			var st unix.Statfs_t
			if err := unix.Statfs(srv.root, &st); err != nil {
				t.Fatal(err)
			}
			want := int64(st.Bavail) * st.Bsize
			if diff := math.Abs(float64(got - want)); diff > 256<<20 {
				t.Errorf("Free() = %d, want about %d (statfs of %s)", got, want, srv.root)
			}
		})
	}
}

func TestSSHHostKeysAndIdentity(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	fp := ssh.FingerprintSHA256(s.hostKey)
	other, _ := newKey(t)
	otherPEM := func() []byte { _, p := newKey(t); return p }
	_, rsaKey := func() (ssh.Signer, []byte) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return marshalKey(t, k, nil)
	}()
	_, ecdsaKey := func() (ssh.Signer, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return marshalKey(t, k, nil)
	}()
	_, locked := func() (ssh.Signer, []byte) {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return marshalKey(t, k, []byte("secret"))
	}()
	hostport := fmt.Sprintf("127.0.0.1:%d", s.port)
	for _, tt := range []struct {
		name       string
		knownHosts string // contents; "-" leaves the server's file
		identity   []byte // nil: the authorized key
		authorize  bool   // add identity to authorized_keys
		insecure   bool
		wantErr    error
		want       []string // in the error, or with no error, in the log
	}{
		{name: "known", knownHosts: "-"},
		{name: "known among others", knownHosts: knownhosts.Line([]string{"example.org"}, other.PublicKey()) + "\n" +
			knownhosts.Line([]string{hostport}, s.hostKey) + "\n"},
		{
			name: "unknown", knownHosts: knownhosts.Line([]string{"example.org"}, s.hostKey) + "\n",
			wantErr: ErrHostKeyUnknown, want: []string{fp, "ssh-ed25519", "ssh-keyscan -p", "rebuild the image"},
		},
		{
			name: "empty known_hosts", knownHosts: "",
			wantErr: ErrHostKeyUnknown, want: []string{fp, "add it to known_hosts"},
		},
		{
			name: "changed", knownHosts: knownhosts.Line([]string{hostport}, other.PublicKey()) + "\n",
			wantErr: ErrHostKeyChanged, want: []string{fp, ssh.FingerprintSHA256(other.PublicKey()), "known_hosts:1", "rebuild the image"},
		},
		{
			name: "revoked", knownHosts: "@revoked * " + string(ssh.MarshalAuthorizedKey(s.hostKey)),
			wantErr: ErrHostKeyChanged, want: []string{fp, "@revoked"},
		},
		{
			name: "insecure_ignore_host_key", knownHosts: "", insecure: true,
			want: []string{"warning: insecure_ignore_host_key", fp},
		},
		{
			name: "wrong client key", knownHosts: "-", identity: otherPEM(),
			wantErr: ErrAuth, want: []string{"refused key ssh-ed25519 SHA256:", "authorized_keys", `user "root"`},
		},
		{name: "rsa identity", knownHosts: "-", identity: rsaKey, authorize: true},
		{name: "ecdsa identity", knownHosts: "-", identity: ecdsaKey, authorize: true},
		{
			name: "identity with passphrase", knownHosts: "-", identity: locked,
			want: []string{"protected by a passphrase", "ssh-keygen -t ed25519 -N ''"},
		},
		{
			name: "not a key", knownHosts: "-", identity: []byte("hello\n"),
			want: []string{"want an OpenSSH private key"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			tg := s.target("sftp", l)
			tg.InsecureIgnoreHostKey = tt.insecure
			dir := t.TempDir()
			if tt.knownHosts != "-" {
				tg.KnownHosts = writeFile(t, filepath.Join(dir, "known_hosts"), []byte(tt.knownHosts))
			}
			if tt.identity != nil {
				tg.Identity = writeFile(t, filepath.Join(dir, "id"), tt.identity)
			}
			if tt.authorize {
				signer, err := ssh.ParsePrivateKey(tt.identity)
				if err != nil {
					t.Fatal(err)
				}
				ak, err := os.OpenFile(filepath.Join(s.dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				ak.Write(ssh.MarshalAuthorizedKey(signer.PublicKey()))
				if err := ak.Close(); err != nil {
					t.Fatal(err)
				}
			}
			d, err := tg.Open(context.Background())
			if err == nil {
				defer d.Close()
			}
			t.Logf("Open() = %v", err)
			failWant := tt.wantErr != nil || (tt.want != nil && !tt.insecure)
			switch {
			case failWant && err == nil:
				t.Fatalf("Open() = nil error, want one with %q", tt.want)
			case !failWant && err != nil:
				t.Fatalf("Open() = %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Open() = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("Open() = %v, want it to contain %q", err, w)
				}
				if err == nil && !l.has(w) {
					t.Errorf("log %q: want a line with %q", l.lines, w)
				}
			}
		})
	}
}

func TestSSHConfigErrors(t *testing.T) {
	t.Parallel()
	_, key := newKey(t)
	dir := t.TempDir()
	id := writeFile(t, filepath.Join(dir, "id"), key)
	kh := writeFile(t, filepath.Join(dir, "known_hosts"), nil)
	port := freePort(t) // nobody listens there
	for _, tt := range []struct {
		name string
		tg   SSH
		want string
	}{
		{"bad scheme", SSH{URL: "ftp://u@h/x", Identity: id, KnownHosts: kh}, `unsupported scheme "ftp"`},
		{"no user", SSH{URL: "sftp://h/x", Identity: id, KnownHosts: kh}, "needs user@host"},
		{"password", SSH{URL: "sftp://u:pw@h/x", Identity: id, KnownHosts: kh}, "passwords are not supported"},
		{"no identity", SSH{URL: "sftp://u@h/x", KnownHosts: kh}, "no identity"},
		{"missing identity", SSH{URL: "sftp://u@h/x", Identity: dir + "/nope", KnownHosts: kh}, "read identity"},
		{"no known_hosts", SSH{URL: "sftp://u@h/x", Identity: id}, "no known_hosts configured"},
		{"missing known_hosts", SSH{URL: "sftp://u@h/x", Identity: id, KnownHosts: dir + "/nope"}, "ssh-keyscan"},
		{"nobody listening", SSH{URL: fmt.Sprintf("sftp://u@127.0.0.1:%d/x", port), Identity: id, KnownHosts: kh, Reconnect: time.Second}, "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.tg.Open(context.Background())
			if err == nil {
				d.Close()
				t.Fatalf("Open(%s) = nil error, want %q", tt.tg.URL, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%s) = %v, want it to contain %q", tt.tg.URL, err, tt.want)
			}
		})
	}
}

func TestSSHLegacySCP(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{noSFTP: true})

	t.Run("sftp url refused", func(t *testing.T) {
		_, err := s.target("sftp", newTestLog(t)).Open(context.Background())
		if !errors.Is(err, ErrNoSFTP) || !strings.Contains(err.Error(), "scp://") {
			t.Errorf("Open(sftp:// on a server without SFTP) = %v, want %v naming scp://", err, ErrNoSFTP)
		}
	})

	l := newTestLog(t)
	tg := s.target("scp", l)
	tg.URL += "/new dir/it's" // made by Open; quoting matters
	root := filepath.Join(s.root, "new dir", "it's")
	d := open(t, tg)
	if _, ok := d.(*scpDir); !ok {
		t.Errorf("Open() = %T, want *scpDir (legacy scp)", d)
	}
	if !l.has("no SFTP subsystem", "legacy scp") {
		t.Errorf("log %q: want a line saying it falls back to legacy scp", l.lines)
	}
	data := randomBytes(t, 4<<20+12345)
	save(t, d, "h-20240101T000000Z", data, 1<<20+7)
	checkSaved(t, root, "h-20240101T000000Z", data)
	if err := d.Mkdir("h-20240101T000000Z"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir(existing) = %v, want fs.ErrExist", err)
	}

	t.Run("retention", func(t *testing.T) {
		for _, n := range []string{"h-20230101T000000Z", "h-20230102T000000Z"} {
			if err := os.MkdirAll(filepath.Join(root, n, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, filepath.Join(root, "h-20200101T000000Z"), nil)
		removed, err := Prune(d, Retention{Host: "h", Keep: 1, Exclude: "h-20240101T000000Z"})
		if err != nil {
			t.Fatalf("Prune(2) = %v", err)
		}
		if diff := cmp.Diff([]string{"h-20230101T000000Z", "h-20230102T000000Z"}, removed); diff != "" {
			t.Errorf("Prune(2) removed (-want, +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"h-20200101T000000Z", "h-20240101T000000Z"}, listDir(t, root)); diff != "" {
			t.Errorf("after Prune(2), the server has (-want, +got):\n%s", diff)
		}
	})

	t.Run("large file of unknown size", func(t *testing.T) {
		f, err := d.Create("h-20240101T000000Z/blob")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(make([]byte, 2<<20))
		if err == nil || !strings.Contains(err.Error(), "SFTP subsystem") {
			t.Errorf("Write(2 MiB of zeros) = %v, want an error saying to enable the SFTP subsystem", err)
		}
		f.Close() // the error is Write's
	})

	t.Run("short file", func(t *testing.T) {
		f, err := d.Create("h-20240101T000000Z/short")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.(Sizer).SetSize(int64(len(data))); err != nil {
			t.Fatalf("SetSize = %v", err)
		}
		if _, err := f.Write(data[:len(data)/2]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err == nil || !strings.Contains(err.Error(), "incomplete") {
			t.Errorf("Close() after half the file = %v, want an error saying it is incomplete", err)
		}
	})

	t.Run("size given after the first bytes", func(t *testing.T) {
		f, err := d.Create("h-20240101T000000Z/late")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[:100]); err != nil {
			t.Fatal(err)
		}
		if err := f.(Sizer).SetSize(99); err == nil {
			t.Errorf("SetSize(99) after 100 bytes = nil, want an error")
		}
		f.Close() // the error is SetSize's
		if f, err = d.Create("h-20240101T000000Z/late"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[:100]); err != nil {
			t.Fatal(err)
		}
		if err := f.(Sizer).SetSize(int64(len(data))); err != nil {
			t.Fatalf("SetSize after 100 bytes = %v", err)
		}
		writeChunks(t, f, data[100:], 1<<20)
		if err := f.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "h-20240101T000000Z", "late")); !bytes.Equal(got, data) {
			t.Errorf("the server has %d bytes, want the %d written", len(got), len(data))
		}
	})
}

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"plain", "with space", "it's", `"$(rm -rf /)"`, "a'b'c", ""} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", shellQuote(s), err)
		}
		if string(out) != s {
			t.Errorf("sh printed %q for shellQuote(%q) = %s", out, s, shellQuote(s))
		}
	}
}
