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
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Credentials of the server's root user.
const (
	AccessKey = "ukdumptestaccess"
	SecretKey = "ukdumptestsecret0123456789"
	Region    = "us-east-1"
)

// Binary finds versitygw: in the test cache, else on $PATH.
func Binary(t testing.TB) string {
	cache := os.Getenv("UKDUMP_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/ukdump-test"
	}
	p := filepath.Join(cache, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	t.Fatalf("versitygw not found in %s/bin or $PATH: run scripts/deps.sh (it builds versitygw v1.8.0 there)", cache)
	return ""
}

// Server is a running versitygw.
type Server struct {
	t    testing.TB
	bin  string
	Root string // the POSIX backend's directory: ROOT/BUCKET/KEY are the objects
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
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

// StartAt is Start on a given address.
func StartAt(t testing.TB, addr string, buckets ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), Root: t.TempDir(), Addr: addr}
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

// URL is the server's endpoint, http://ADDR.
func (s *Server) URL() string { return "http://" + s.Addr }

// Restart starts the server (again, after Stop) and waits until it takes
// connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.Addr, "--access", AccessKey, "--secret", SecretKey,
		"--region", Region, "posix", s.Root)
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
