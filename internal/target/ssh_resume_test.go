// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build linux

package target

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// proxy forwards TCP connections on 127.0.0.1 to an address; it can cut
// or stall each one after some client-to-server bytes, and counts them.
type proxy struct {
	ln net.Listener
	to string
	// plan says what happens to the i-th connection (from 0): after limit
	// client-to-server bytes it is cut (both sides closed) or, with stall,
	// nothing more is forwarded until the test ends. limit < 0: nothing.
	plan func(i int) (limit int64, stall bool)
	// up counts the client-to-server bytes forwarded, all connections.
	up   atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	n    int // connections accepted
	open []net.Conn
}

func startProxy(t testing.TB, to string, plan func(i int) (int64, bool)) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, to: to, plan: plan, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		close(p.done)
		ln.Close() // ends accept
		p.mu.Lock()
		for _, c := range p.open {
			c.Close() // ends the pipes; they may be closed already
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed at the end of the test
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		i := p.n
		p.n++
		p.open = append(p.open, c, s)
		p.mu.Unlock()
		limit, stall := p.plan(i)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(c, s) // server to client, until either side closes
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.forward(c, s, limit, stall)
		}()
	}
}

// forward copies client to server, up to limit bytes.
func (p *proxy) forward(c, s net.Conn, limit int64, stall bool) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		if limit >= 0 && n+int64(m) >= limit {
			m = int(limit - n)
			if _, err := s.Write(buf[:m]); err == nil {
				p.up.Add(int64(m))
			}
			if stall {
				<-p.done // a dead server: it neither reads nor answers
			}
			c.Close()
			s.Close()
			return
		}
		if m > 0 {
			if _, err := s.Write(buf[:m]); err != nil {
				c.Close()
				return
			}
			n += int64(m)
			p.up.Add(int64(m))
		}
		if err != nil {
			s.Close()
			return
		}
	}
}

// viaProxy returns a target that reaches s through p.
func (s *sshd) viaProxy(t testing.TB, p *proxy, sub string, l *testLog) *SSH {
	tg := s.target("sftp", l)
	tg.URL = fmt.Sprintf("sftp://root@127.0.0.1:%d%s/%s", p.port(), s.root, sub)
	line := knownhosts.Line([]string{fmt.Sprintf("127.0.0.1:%d", p.port())}, s.hostKey)
	tg.KnownHosts = writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), []byte(line+"\n"))
	return tg
}

func TestSSHResume(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	const size = 8 << 20
	data := randomBytes(t, size)
	want := sha256.Sum256(data)
	for i, tt := range []struct {
		name string
		// cuts[i] is where the i-th connection is cut, in bytes it carried to the server.
		cuts []int64
		// chunk is the size of each Write: 4 MiB as the collector's plain
		// copy, 4 KiB as its page-by-page copy, or odd.
		chunk int
	}{
		{"no cut", nil, 4 << 20},
		{"inside the first chunk", []int64{300 << 10}, 4 << 20},
		{"inside the last chunk", []int64{size - 300<<10}, 4 << 20},
		{"several", []int64{2 << 20, 2 << 20, 2 << 20}, 4 << 20},
		{"again during the handshake", []int64{3 << 20, 500, 800}, 4 << 20},
		{"pages, no cut", nil, 4096},
		{"pages, inside the first chunk", []int64{300 << 10}, 4096},
		{"pages, inside the last chunk", []int64{size - 300<<10}, 4096},
		{"odd writes, several", []int64{1 << 20, 3 << 20}, 3<<20 + 4097},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", s.port), func(i int) (int64, bool) {
				if i < len(tt.cuts) {
					return tt.cuts[i], false
				}
				return -1, false
			})
			l := newTestLog(t)
			sub := fmt.Sprint(i)
			d := open(t, s.viaProxy(t, p, sub, l))
			save(t, d, "h-20240101T000000Z", data, tt.chunk)
			checkSaved(t, filepath.Join(s.root, sub), "h-20240101T000000Z", data)
			got, err := os.ReadFile(filepath.Join(s.root, sub, "h-20240101T000000Z", "vmcore"))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != want {
				t.Errorf("sha256 of the saved vmcore = %x, want %x", sha256.Sum256(got), want)
			}
			if got, want := p.conns(), len(tt.cuts)+1; got != want {
				t.Errorf("connections through the proxy = %d, want %d (one per cut, and the last)", got, want)
			}
			if len(tt.cuts) > 0 && !l.has("resuming at") {
				t.Errorf("log %q: want a line saying where it resumed", l.lines)
			}
			// Sent twice at most: the unacknowledged tail of one piece per
			// cut. Beyond that: SSH and SFTP framing (< 1%) and, per
			// connection, a handshake and the small requests (< 32 KiB).
			up := p.up.Load()
			allowed := int64(size) + size/100 + int64(p.conns())*(32<<10) + int64(len(tt.cuts))*sftpPiece
			t.Logf("%d bytes to the server for %d of data (%.2f%%), %d connections", up, size, 100*float64(up-size)/size, p.conns())
			if up > allowed {
				t.Errorf("%d bytes went to the server for %d of data; want at most %d: more than the unacknowledged tail was sent again", up, size, allowed)
			}
		})
	}
}

// TestSFTPReopen checks what a resumed write trusts of the server's copy.
func TestSFTPReopen(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	data := randomBytes(t, 100<<10)
	for _, tt := range []struct {
		name      string
		change    func(path string) error // the server's copy, before the resume
		wantAcked int64
		wantErr   string
	}{
		{"intact", func(string) error { return nil }, 100 << 10, ""},
		{"acknowledged tail differs", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte("corrupt"), 90<<10)
			return err
		}, 64 << 10, ""},
		{"unacknowledged bytes beyond", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(make([]byte, 5000))
			return err
		}, 100 << 10, ""},
		{"server lost data", func(p string) error { return os.Truncate(p, 80<<10) }, 100 << 10, "fewer than the 102400 it acknowledged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t)
			d := open(t, s.target("sftp", l))
			name := strings.ReplaceAll(tt.name, " ", "-")
			fi, err := d.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			f := fi.(*sftpFile)
			if _, err := f.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := f.flush(); err != nil {
				t.Fatal(err)
			}
			local := filepath.Join(s.root, name)
			if err := tt.change(local); err != nil {
				t.Fatal(err)
			}
			// As after a cut in the piece that began at 64 KiB.
			f.f.Close() // as resume does; the handle is replaced
			err = f.reopen(data[64<<10:])
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("reopen() = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("reopen() = %v", err)
			}
			if f.acked != tt.wantAcked {
				t.Errorf("after reopen(), acked = %d, want %d", f.acked, tt.wantAcked)
			}
			if _, err := f.Write(data[f.acked:]); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(local)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s after the resume: %d bytes that differ from the %d written (first difference at %d)", local, len(got), len(data), firstDiff(got, data))
			}
		})
	}
}

// TestSSHDeadServer checks that a server that stops answering ends the
// write within the reconnect bound or the context, not never.
func TestSSHDeadServer(t *testing.T) {
	t.Parallel()
	s := startSSHD(t, sshdOptions{})
	data := randomBytes(t, 4<<20)
	for i, tt := range []struct {
		name      string
		reconnect time.Duration
		ctx       time.Duration
		want      string
	}{
		{"reconnect bound", 2 * time.Second, time.Minute, "gave up after"},
		{"context deadline", time.Minute, 3 * time.Second, "context deadline exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The first connection goes dead after 1 MiB; later ones at once.
			p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", s.port), func(i int) (int64, bool) {
				if i == 0 {
					return 1 << 20, true
				}
				return 0, true
			})
			l := newTestLog(t)
			tg := s.viaProxy(t, p, fmt.Sprint("dead", i), l)
			// The first connection gets time for its handshake on a busy
			// machine; the short timeout is for the dead ones after it.
			tg.KeepAlive, tg.Timeout, tg.Reconnect = 100*time.Millisecond, 10*time.Second, tt.reconnect
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctx)
			defer cancel()
			d, err := tg.Open(ctx)
			if err != nil {
				t.Fatalf("Open() = %v", err)
			}
			tg.Timeout = 500 * time.Millisecond
			defer d.Close()
			f, err := d.Create("vmcore.incomplete")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			n, err := f.Write(data)
			el := time.Since(start)
			t.Logf("Write() = %d, %v after %s", n, err, el.Round(time.Millisecond))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write() to a dead server = %d, %v; want an error with %q", n, err, tt.want)
			}
			if el > 10*time.Second {
				t.Errorf("Write() to a dead server took %s, want it to give up within seconds", el)
			}
			if !l.has("answered no keepalive") {
				t.Errorf("log %q: want a line saying the server answered no keepalive", l.lines)
			}
			if n > 1<<20 {
				t.Errorf("Write() = %d bytes, but only 1 MiB reached the server", n)
			}
			f.Close() // the error is Write's
		})
	}
}

// BenchmarkSSHSave saves 256 MiB over SFTP on loopback, and copies the
// same file with OpenSSH's scp (SFTP mode, and -O for the legacy protocol)
// to the same server, for comparison:
//
//	go test -run '^$' -bench SSHSave -benchtime 1x ./internal/target/
func BenchmarkSSHSave(b *testing.B) {
	s := startSSHD(b, sshdOptions{})
	const size = 256 << 20
	data := randomBytes(b, size)
	src := writeFile(b, filepath.Join(b.TempDir(), "vmcore"), data)
	b.Run("ukdump-sftp", func(b *testing.B) {
		b.SetBytes(size)
		d := open(b, s.target("sftp", newTestLog(b)))
		for i := 0; i < b.N; i++ {
			f, err := d.Create("vmcore")
			if err != nil {
				b.Fatal(err)
			}
			writeChunks(b, f, data, 4<<20)
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, mode := range []struct{ name, flag string }{
		{"openssh-scp", ""},
		{"openssh-scp-aes128-gcm", "-caes128-gcm@openssh.com"}, // the cipher x/crypto/ssh prefers
		{"openssh-scp-O", "-O"},
	} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				args := []string{"-q", "-i", s.identity, "-o", "UserKnownHostsFile=" + s.knownHosts, "-o", "BatchMode=yes", "-P", fmt.Sprint(s.port)}
				if mode.flag != "" {
					args = append(args, mode.flag)
				}
				args = append(args, src, "root@127.0.0.1:"+s.root+"/scp-vmcore")
				if out, err := exec.Command("scp", args...).CombinedOutput(); err != nil {
					b.Fatalf("scp: %v\n%s", err, out)
				}
			}
		})
	}
}
