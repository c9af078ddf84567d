// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/targetspec"
)

// Target is an S3 bucket and key prefix: a dump directory is the prefix
// PREFIX/<host>-<stamp>/, the dump the object vmcore under it.
type Target struct {
	// URL is s3://bucket/prefix.
	URL string
	// Endpoint is the server, http:// or https://host[:port].
	Endpoint string
	// Region signs the requests (default us-east-1).
	Region string
	// AccessKeyFile and SecretKeyFile hold the credentials (surrounding
	// white space is dropped).
	AccessKeyFile, SecretKeyFile string
	// CAFile, for an https endpoint, holds the PEM certificates the server's
	// chain must end in; SystemCAFile is used when CAFile is empty (the
	// build host's bundle, copied into the image). Both empty: Go's system
	// roots.
	CAFile, SystemCAFile string
	// PartSize is the multipart upload's part size (default
	// DefaultPartSize); InFlight the parts sent at once (default
	// DefaultInFlight). The upload holds (InFlight+1)×PartSize bytes.
	PartSize, InFlight int
	// Logf logs what happens (retries, aborted uploads).
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retries and Backoff are the client's (see Client).
	Retries int
	Backoff time.Duration
	// DialTimeout bounds a connection attempt (default 10s).
	DialTimeout time.Duration
}

func (t *Target) String() string { return t.URL + " at " + t.Endpoint }

// Open reads the credentials, and checks that the bucket answers to them
// (a ListObjectsV2 of one key): wrong keys and a missing bucket fail here,
// with the S3 error and what to do.
func (t *Target) Open(ctx context.Context) (target.Dir, error) {
	spec, err := targetspec.ParseS3(t.URL, t.Endpoint)
	if err != nil {
		return nil, err
	}
	access, err := readKey(t.AccessKeyFile, "access_key_file")
	if err != nil {
		return nil, err
	}
	secret, err := readKey(t.SecretKeyFile, "secret_key_file")
	if err != nil {
		return nil, err
	}
	logf := t.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dialTimeout := t.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 nil, // the capture kernel has no proxy settings; never read them
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   4,
	}
	if spec.Endpoint.Scheme == "https" {
		caFile := t.CAFile
		if caFile == "" {
			caFile = t.SystemCAFile
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("CA certificates: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA certificates: %s holds no PEM certificate", caFile)
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	region := t.Region
	if region == "" {
		region = "us-east-1"
	}
	hc := &http.Client{Transport: tr}
	newClient := func(retries int) *Client {
		return &Client{Endpoint: spec.Endpoint, Region: region, Bucket: spec.Bucket, AccessKey: access, SecretKey: secret,
			HTTP: hc, Now: t.Now, Retries: retries, Backoff: t.Backoff, Logf: logf}
	}
	// A failed check is not worth the long retries: one more try.
	check := newClient(1)
	if _, _, err := check.list(ctx, spec.Prefix, "/", 1); err != nil {
		return nil, fmt.Errorf("bucket %q at %s: %w", spec.Bucket, spec.Endpoint.Redacted(), err)
	}
	c := newClient(t.Retries)
	c.skew = check.skew // a corrected clock carries over
	return &Dir{t: t, c: c, ctx: ctx, prefix: spec.Prefix, logf: logf, uploads: map[string]*Upload{}}, nil
}

// readKey reads a credential file.
func readKey(file, field string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("%s: not set", field)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("%s: %s is empty", field, file)
	}
	return k, nil
}

// Dir is the target's prefix. Names are relative to it, "/"-separated.
// There are no directories in S3: Mkdir checks that nothing has the
// prefix yet, and the dump's vmcore.incomplete is a multipart upload to
// the key vmcore that Rename completes (see Create).
type Dir struct {
	t      *Target
	c      *Client
	ctx    context.Context
	prefix string // "" or ending in "/"
	logf   func(string, ...any)

	mu      sync.Mutex
	uploads map[string]*Upload // vmcore.incomplete name → its upload, until completed or aborted
}

var _ target.Dir = (*Dir)(nil)

func (d *Dir) String() string {
	return strings.TrimSuffix("s3://"+d.c.Bucket+"/"+d.prefix, "/")
}

func (d *Dir) key(name string) string { return d.prefix + name }

// incompleteSuffix marks the dump while it is written (internal/capture's
// copy): its upload goes to the key without it.
const incompleteSuffix = ".incomplete"

// Mkdir fails with fs.ErrExist if some key is under name/ already.
func (d *Dir) Mkdir(name string) error {
	keys, _, err := d.c.list(d.ctx, d.key(name)+"/", "", 1)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return &fs.PathError{Op: "mkdir", Path: d.key(name), Err: fs.ErrExist}
	}
	return nil
}

// Create returns a file whose bytes become the object name on Close; a
// name ending in .incomplete is a multipart upload to the name without it,
// completed by Rename and aborted by Close if not.
func (d *Dir) Create(name string) (target.File, error) {
	if strings.HasSuffix(name, incompleteSuffix) {
		key := d.key(strings.TrimSuffix(name, incompleteSuffix))
		u, err := d.c.NewUpload(d.ctx, key, d.t.PartSize, d.t.InFlight)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.uploads[name] = u
		d.mu.Unlock()
		d.logf("s3: multipart upload of %s in parts of %d MiB", key, u.partSize>>20)
		return uploadFile{u}, nil
	}
	return &object{d: d, key: d.key(name)}, nil
}

// uploadFile is the dump being uploaded. It is neither an io.WriterAt nor
// an io.ReaderAt: collect writes it the flattened stream.
type uploadFile struct{ u *Upload }

func (f uploadFile) Write(p []byte) (int, error) { return f.u.Write(p) }

// Sync does nothing: a part is durable when the server answers its PUT.
func (f uploadFile) Sync() error  { return nil }
func (f uploadFile) Close() error { return f.u.Close() }

// object is a small file, sent in one PUT on Close (the side files: a few
// hundred KB at most).
type object struct {
	d    *Dir
	key  string
	data []byte
}

func (o *object) Write(p []byte) (int, error) {
	o.data = append(o.data, p...)
	return len(p), nil
}
func (o *object) Sync() error  { return nil }
func (o *object) Close() error { return o.d.c.putObject(o.d.ctx, o.key, o.data) }

// Rename completes the upload of oldname (…/vmcore.incomplete) to newname
// (…/vmcore): the object exists from then on, whole. Other renames are not
// possible on S3.
func (d *Dir) Rename(oldname, newname string) error {
	d.mu.Lock()
	u := d.uploads[oldname]
	d.mu.Unlock()
	if u == nil || strings.TrimSuffix(oldname, incompleteSuffix) != newname {
		return fmt.Errorf("s3: rename %s to %s: S3 has no rename", oldname, newname)
	}
	if err := u.Complete(); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.uploads, oldname)
	d.mu.Unlock()
	d.logf("s3: completed %s: %d bytes in %d parts", u.key, u.size, u.n)
	return nil
}

// SyncDir does nothing: an object is durable when its PUT is answered.
func (d *Dir) SyncDir(string) error { return nil }

// List returns the "directories" under the prefix.
func (d *Dir) List() ([]string, error) {
	_, prefixes, err := d.c.list(d.ctx, d.prefix, "/", 0)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		if n := strings.TrimSuffix(strings.TrimPrefix(p, d.prefix), "/"); n != "" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	return names, nil
}

// RemoveAll deletes every object under name/.
func (d *Dir) RemoveAll(name string) error {
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("s3: remove %q: not a dump directory name", name)
	}
	keys, _, err := d.c.list(d.ctx, d.key(name)+"/", "", 0)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if err := d.c.deleteObject(d.ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Free is unlimited: a bucket has no free space to count, so min_free
// never removes a dump on S3 (keep does).
func (d *Dir) Free() (int64, error) { return math.MaxInt64, nil }

// DropsIncomplete says what becomes of a dump whose copy failed: its
// upload is aborted when the target is closed (internal/capture puts this
// in the manifest and the log).
func (d *Dir) DropsIncomplete() string {
	return "S3 keeps no partial object: the multipart upload of vmcore was aborted (if the capture was killed first, the bucket's lifecycle rule AbortIncompleteMultipartUpload removes its parts)"
}

// Close aborts the uploads not completed: a failed dump leaves no parts
// behind (a capture killed before this leaves them to the bucket's
// lifecycle rule).
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for name, u := range d.uploads {
		// The capture's context may have ended (its deadline): abort on our own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 30*time.Second)
		err := u.Abort(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("abort the upload of %s: %w", u.key, err))
		} else {
			d.logf("s3: aborted the upload of %s (%s): the dump was not completed", u.key, path.Base(name))
		}
		delete(d.uploads, name)
	}
	return errors.Join(errs...)
}
