// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package s3 is the S3 dump target: a dump directory is a key prefix in a
// bucket, the dump is written with a multipart upload completed only when it
// is whole, and the side files are plain objects.
//
// The protocol is a handful of REST calls over net/http, signed with
// aws-sdk-go-v2's standalone SigV4 signer (aws/signer/v4). Measured
// 2026-12-02 (Go 1.26, -trimpath -s -w): in a static binary the signer adds
// 0.10 MB over net/http + TLS + encoding/xml, minio-go/v7's Core API 1.49 MB;
// the capture busybox (make out/bb) went from 8466558 to 10211454 bytes with
// this target (net/http without HTTP/2, TLS, XML, signer), and linking
// minio-go's Core calls into it as well made 11108478 (docs/design.md, "The
// S3 target"). The signer also takes the signing time as an argument, which
// the clock-skew correction needs. The package is only linked into the full busybox
// (internal/capture's net_on.go): the disk-only one (ukdump_nonet) has no
// net/http at all.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client makes signed S3 requests to one bucket, path-style
// (ENDPOINT/BUCKET/KEY), which every S3-compatible store accepts.
type Client struct {
	// Endpoint is the server: scheme, host and port ("https://s3.example.com").
	Endpoint *url.URL
	// Region is the SigV4 signing region ("us-east-1" for most
	// S3-compatible stores).
	Region string
	// Bucket is the bucket every key is in.
	Bucket string
	// AccessKey and SecretKey are the credentials.
	AccessKey, SecretKey string
	// HTTP is the client requests go through (default http.DefaultClient).
	HTTP *http.Client
	// Now is the clock (default time.Now); the capture kernel's may be wrong,
	// which the server's Date header corrects (see do).
	Now func() time.Time
	// Retries is how many times a request that failed for a reason that may
	// pass (a network error, 5xx, 429, RequestTimeout) is sent again
	// (default 7); the waits start at Backoff (default 500ms) and double up
	// to 8s: about 40s in all.
	Retries int
	Backoff time.Duration
	// Logf logs retries and clock corrections (default: nothing).
	Logf func(format string, args ...any)

	once   sync.Once
	signer *v4.Signer
	mu     sync.Mutex
	skew   time.Duration // added to Now when signing
}

// Error is an error answer of the server, or a request that never got one.
type Error struct {
	// Op names the request: "UploadPart vmcore (part 3)".
	Op string
	// Status is the HTTP status, 0 if no answer came.
	Status int
	// Code and Message are the S3 error's (<Error><Code>…).
	Code, Message string
	// Err is the transport's error when no answer came.
	Err error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("s3 %s: %v", e.Op, e.Err)
	}
	msg := fmt.Sprintf("s3 %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if hint := hints[e.Code]; hint != "" {
		msg += " (" + hint + ")"
	} else if e.Status == http.StatusForbidden {
		msg += " (" + hints["AccessDenied"] + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// hints say what to do about the errors a misconfigured target gets.
var hints = map[string]string{
	"NoSuchBucket":                 "the bucket does not exist on this endpoint: create it, or fix the bucket in the target's url",
	"InvalidAccessKeyId":           "the server does not know this access key: check access_key_file",
	"XAdminUserNotFound":           "the server does not know this access key: check access_key_file", // versitygw's InvalidAccessKeyId
	"SignatureDoesNotMatch":        "the server refused the signature: check secret_key_file (and region)",
	"AccessDenied":                 "the credentials may not write to this bucket: check access_key_file, secret_key_file and the bucket's policy",
	"AuthorizationHeaderMalformed": "check the target's region",
	"RequestTimeTooSkewed":         "the capture kernel's clock is far from the server's",
}

// retryable says whether a failed request may succeed if sent again.
func (e *Error) retryable() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	case e.Status >= 500, e.Status == http.StatusTooManyRequests:
		return true
	}
	return e.Code == "RequestTimeout" || e.Code == "SlowDown" || e.Code == "InternalError"
}

// request is one S3 call.
type request struct {
	op     string // for errors and the log
	method string
	key    string // "" for the bucket itself
	query  url.Values
	body   []byte
	header http.Header
}

// response is what came back: status 2xx.
type response struct {
	header http.Header
	body   []byte
}

// maxResponse bounds a response body read into memory: the XML answers of
// the calls made here are a few KB (ListParts of 1000 parts ~ 200 KB).
const maxResponse = 4 << 20

func (c *Client) init() {
	c.once.Do(func() {
		c.signer = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if c.HTTP == nil {
			c.HTTP = http.DefaultClient
		}
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Retries == 0 {
			c.Retries = 7
		}
		if c.Backoff == 0 {
			c.Backoff = 500 * time.Millisecond
		}
		if c.Logf == nil {
			c.Logf = func(string, ...any) {}
		}
	})
}

// escapeKey escapes each segment of a key for the request path: the
// signer is told not to escape again (S3 signs the path as sent).
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// do sends r, retrying as Retries says. When the server answers
// RequestTimeTooSkewed (the capture kernel's clock is wrong: its RTC may
// be off, and nothing set it), the signing clock is corrected by the
// difference to the server's Date header and the request sent again at
// once; the correction holds for every later request.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	c.init()
	wait := c.Backoff
	skewFixed := false
	for attempt := 0; ; attempt++ {
		resp, err := c.once1(ctx, r)
		if err == nil {
			return resp, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			return nil, err
		}
		if e.Code == "RequestTimeTooSkewed" && !skewFixed && resp != nil {
			if d, perr := http.ParseTime(resp.header.Get("Date")); perr == nil {
				c.mu.Lock()
				c.skew = d.Sub(c.Now())
				skew := c.skew
				c.mu.Unlock()
				c.Logf("s3: the server's clock is %s from ours (its Date: %s): signing with its time", skew.Round(time.Second), resp.header.Get("Date"))
				skewFixed = true
				attempt--
				continue
			}
		}
		if !e.retryable() || attempt >= c.Retries {
			return nil, err
		}
		c.Logf("s3: %v; retrying in %s (%d of %d)", err, wait, attempt+1, c.Retries)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Op: r.op, Err: context.Cause(ctx)}
		case <-t.C:
		}
		wait = min(2*wait, 8*time.Second)
	}
}

// once1 sends r once. On an error answer it returns the response (for
// its headers) with the *Error.
func (c *Client) once1(ctx context.Context, r request) (*response, error) {
	u := *c.Endpoint
	u.Path = "/" + c.Bucket
	u.RawPath = "/" + url.PathEscape(c.Bucket)
	if r.key != "" {
		u.Path += "/" + r.key
		u.RawPath += "/" + escapeKey(r.key)
	}
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), bytes.NewReader(r.body))
	if err != nil {
		return nil, &Error{Op: r.op, Err: err}
	}
	req.ContentLength = int64(len(r.body))
	if len(r.body) == 0 && r.method != http.MethodPut && r.method != http.MethodPost {
		req.Body = http.NoBody
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	// The payload is not hashed for the signature (UNSIGNED-PAYLOAD): its
	// MD5, which the server checks, is in Content-MD5, a signed header.
	// SHA-256 of every part would cost the capture kernel a second hash of
	// the dump (the manifest's sha256 is the first).
	sum := md5.Sum(r.body)
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	c.mu.Lock()
	now := c.Now().Add(c.skew)
	c.mu.Unlock()
	creds := aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey}
	if err := c.signer.SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", c.Region, now.UTC()); err != nil {
		return nil, &Error{Op: r.op, Err: err}
	}
	hr, err := c.HTTP.Do(req)
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		return nil, &Error{Op: r.op, Err: err}
	}
	defer hr.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxResponse))
	if err != nil {
		return nil, &Error{Op: r.op, Err: fmt.Errorf("read the answer: %w", err)}
	}
	resp := &response{header: hr.Header, body: body}
	if hr.StatusCode/100 != 2 {
		e := &Error{Op: r.op, Status: hr.StatusCode}
		if x, err := parseError(body); err == nil {
			e.Code, e.Message = x.Code, x.Message
		}
		return resp, e
	}
	// CompleteMultipartUpload may fail after its 200 header: the error is
	// then the body.
	if r.method == http.MethodPost && bytes.Contains(body[:min(len(body), 256)], []byte("<Error")) {
		e := &Error{Op: r.op, Status: http.StatusInternalServerError}
		if x, err := parseError(body); err == nil {
			e.Code, e.Message = x.Code, x.Message
		}
		return resp, e
	}
	return resp, nil
}

// md5Hex is the ETag S3 gives a part or a single-PUT object: the MD5 of its
// bytes in hex, quoted.
func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}
