// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ukdump/ukdump/internal/target/s3/s3test"
)

// S3Port is where the test's S3 server (versitygw) listens, in the run's
// network namespace; the guest reaches it at 10.0.2.2:S3Port.
const S3Port = 7070

// S3Bucket and S3Prefix are where the S3 targets put dumps.
const (
	S3Bucket = "dumps"
	S3Prefix = "crash"
)

// s3 reports whether the config has an S3 target.
func (c Config) s3() bool {
	return slices.ContainsFunc(c.Targets, func(t Target) bool { return t.S3Port != 0 })
}

// net reports whether the guest needs a network card.
func (c Config) net() bool { return c.sftp() || c.s3() }

// s3Dir is beside sshDir: the credentials and the server's backend.
func s3Dir(sshDir string) string { return filepath.Join(filepath.Dir(sshDir), "s3") }

// writeS3 makes the S3 credentials (mode 0600: ukdump build refuses
// others) and the server's POSIX backend with the bucket, emptied.
func writeS3(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "root", S3Bucket), 0o755); err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "access"), []byte(s3test.AccessKey+"\n"), 0o600),
		os.WriteFile(filepath.Join(dir, "secret"), []byte(s3test.SecretKey+"\n"), 0o600))
}

// startS3 starts versitygw on 127.0.0.1:S3Port with dir/root as its
// backend, logging to dir/versitygw.log, and waits until it accepts
// connections. Like startSSHD, it runs on the network namespace's thread.
func startS3(ctx context.Context, dir string) (stop func() error, err error) {
	bin, err := s3test.Find()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", S3Port)
	cmd := s3test.Command(bin, addr, filepath.Join(dir, "root"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	stop = func() error {
		cmd.Process.Kill()
		<-done
		return nil
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return stop, nil
		}
		select {
		case werr := <-done:
			return nil, fmt.Errorf("versitygw exited (%v) before listening on %s: see %s", werr, addr, log.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.Join(fmt.Errorf("versitygw does not listen on %s after 20s: see %s", addr, log.Name()), err)
		}
	}
}

// downloadS3 finds the dump directory under the bucket's prefix (in the
// backend's directory tree) and downloads its objects over S3 into dl:
// it runs on the namespace's thread, while the server still runs, one
// connection a file dialled on that thread.
func downloadS3(ctx context.Context, dir, dl string) error {
	if err := errors.Join(os.RemoveAll(dl), os.MkdirAll(dl, 0o755)); err != nil {
		return err
	}
	des, err := os.ReadDir(filepath.Join(dir, "root", S3Bucket, S3Prefix))
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing saved there: the checks say so
	}
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", S3Port)
	for _, de := range des {
		if !de.IsDir() || !dumpDir.MatchString(de.Name()) {
			continue
		}
		objs, err := os.ReadDir(filepath.Join(dir, "root", S3Bucket, S3Prefix, de.Name()))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dl, de.Name()), 0o755); err != nil {
			return err
		}
		for _, o := range objs {
			if o.IsDir() {
				continue
			}
			if err := getObject(ctx, addr, S3Prefix+"/"+de.Name()+"/"+o.Name(), filepath.Join(dl, de.Name(), o.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func getObject(ctx context.Context, addr, key, dst string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := s3test.Get(ctx, conn, addr, S3Bucket, key, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
