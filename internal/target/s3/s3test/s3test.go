// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package s3test runs a real S3-compatible server for tests: versitygw
// (Apache-2.0) with its POSIX backend in a temporary directory, on a
// loopback port. scripts/deps.sh installs it into the test cache
// ($UKDUMP_TEST_CACHE/bin, default /var/cache/ukdump-test/bin). Only tests
// import this package.
package s3test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credentials of the server's root user.
const (
	AccessKey = "ukdumptestaccess"
	SecretKey = "ukdumptestsecret0123456789"
	Region    = "us-east-1"
)

// Find finds versitygw: in the test cache, else on $PATH.
func Find() (string, error) {
	cache := os.Getenv("UKDUMP_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/ukdump-test"
	}
	p := filepath.Join(cache, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("versitygw not found in %s/bin or $PATH: run scripts/deps.sh (it builds versitygw v1.8.0 there)", cache)
}

// Binary is Find, failing the test.
func Binary(t testing.TB) string {
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Command is versitygw serving root's directories as buckets on addr.
func Command(bin, addr, root string) *exec.Cmd {
	return exec.Command(bin, "--port", addr, "--access", AccessKey, "--secret", SecretKey, "--region", Region, "posix", root)
}

// Get downloads bucket/key to w over conn, a connection to the server at
// host (one signed HTTP/1.1 GET, made on the calling goroutine: the e2e
// dials inside a network namespace that only its thread is in).
func Get(ctx context.Context, conn net.Conn, host, bucket, key string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/"+bucket+"/"+key, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(ctx, aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}, req, "UNSIGNED-PAYLOAD", "s3", Region, time.Now()); err != nil {
		return 0, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, fmt.Errorf("GET %s/%s: %w", bucket, key, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, fmt.Errorf("GET %s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("GET %s/%s: %s: %s", bucket, key, resp.Status, b)
	}
	return io.Copy(w, resp.Body)
}

// Server is a running versitygw.
type Server struct {
	t       testing.TB
	bin     string
	Root    string // the POSIX backend's directory: ROOT/BUCKET/KEY are the objects
	Addr    string // 127.0.0.1:PORT
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	tlsArgs []string
}

// Start runs a server on a free loopback port, with the buckets named
// made; it is killed when the test ends.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return StartAt(t, addr, buckets...)
}

// StartTLS is Start serving https with the PEM certificate and key files.
func StartTLS(t testing.TB, cert, key string, buckets ...string) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return start(t, addr, []string{"--cert", cert, "--key", key}, buckets)
}

// StartAt is Start on a given address.
func StartAt(t testing.TB, addr string, buckets ...string) *Server {
	t.Helper()
	return start(t, addr, nil, buckets)
}

func start(t testing.TB, addr string, tlsArgs, buckets []string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), Root: t.TempDir(), Addr: addr, tlsArgs: tlsArgs}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(s.Root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.log = lf
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(lf.Name())
			if len(b) > 8<<10 {
				b = b[len(b)-8<<10:]
			}
			t.Logf("versitygw log (end):\n%s", b)
		}
		lf.Close()
	})
	s.Restart()
	return s
}

// URL is the server's endpoint, http://ADDR (https:// with TLS).
func (s *Server) URL() string {
	if s.tlsArgs != nil {
		return "https://" + s.Addr
	}
	return "http://" + s.Addr
}

// Restart starts the server (again, after Stop) and waits until it takes
// connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = Command(s.bin, s.Addr, s.Root)
	if s.tlsArgs != nil { // global options: before the backend
		s.cmd.Args = append(append(s.cmd.Args[:1:1], s.tlsArgs...), s.cmd.Args[1:]...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("versitygw exited at start: %v (see its log)", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw does not listen on %s after 20s", s.Addr)
		}
	}
}

// Stop kills the server (as a crash would: no clean shutdown) and waits
// for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Object reads an object from the backend's directory.
func (s *Server) Object(bucket, key string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.Root, bucket, filepath.FromSlash(key)))
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// String names the server.
func (s *Server) String() string { return fmt.Sprintf("versitygw at %s (%s)", s.Addr, s.Root) }
