// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// The XML answers read here (the server is not trusted: FuzzParse feeds
// them garbage). encoding/xml reads no DTDs and expands no entities
// beyond the predefined five.

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xmlInitiate struct {
	UploadID string `xml:"UploadId"`
}

// Part is one part of a multipart upload as the server lists it.
type Part struct {
	Number int    `xml:"PartNumber"`
	ETag   string `xml:"ETag"`
	Size   int64  `xml:"Size"`
}

type xmlListParts struct {
	Parts       []Part `xml:"Part"`
	IsTruncated bool   `xml:"IsTruncated"`
	NextMarker  int    `xml:"NextPartNumberMarker"`
}

type xmlListObjects struct {
	Contents []struct {
		Key  string `xml:"Key"`
		Size int64  `xml:"Size"`
	} `xml:"Contents"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
	IsTruncated bool   `xml:"IsTruncated"`
	NextToken   string `xml:"NextContinuationToken"`
}

type xmlComplete struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		Number int    `xml:"PartNumber"`
		ETag   string `xml:"ETag"`
	} `xml:"Part"`
}

func parseError(b []byte) (xmlError, error) {
	var x xmlError
	err := xml.Unmarshal(b, &x)
	return x, err
}

// parseInitiate, parseListParts and parseListObjects read the answers of
// CreateMultipartUpload, ListParts and ListObjectsV2.
func parseInitiate(b []byte) (string, error) {
	var x xmlInitiate
	if err := xml.Unmarshal(b, &x); err != nil {
		return "", fmt.Errorf("bad CreateMultipartUpload answer: %w", err)
	}
	if x.UploadID == "" {
		return "", errors.New("bad CreateMultipartUpload answer: no UploadId")
	}
	return x.UploadID, nil
}

func parseListParts(b []byte) (xmlListParts, error) {
	var x xmlListParts
	if err := xml.Unmarshal(b, &x); err != nil {
		return x, fmt.Errorf("bad ListParts answer: %w", err)
	}
	return x, nil
}

func parseListObjects(b []byte) (xmlListObjects, error) {
	var x xmlListObjects
	if err := xml.Unmarshal(b, &x); err != nil {
		return x, fmt.Errorf("bad ListObjectsV2 answer: %w", err)
	}
	return x, nil
}

// createUpload starts a multipart upload of key and returns its id.
func (c *Client) createUpload(ctx context.Context, key string) (string, error) {
	r, err := c.do(ctx, request{op: "CreateMultipartUpload " + key, method: http.MethodPost, key: key,
		query: url.Values{"uploads": {""}}, header: http.Header{"Content-Type": {"application/octet-stream"}}})
	if err != nil {
		return "", err
	}
	return parseInitiate(r.body)
}

// uploadPart sends one part and returns its ETag.
func (c *Client) uploadPart(ctx context.Context, key, id string, n int, data []byte) (string, error) {
	r, err := c.do(ctx, request{op: fmt.Sprintf("UploadPart %s (part %d)", key, n), method: http.MethodPut, key: key,
		query: url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {id}}, body: data})
	if err != nil {
		return "", err
	}
	return r.header.Get("ETag"), nil
}

// listParts lists the parts the server holds of an upload.
func (c *Client) listParts(ctx context.Context, key, id string) ([]Part, error) {
	var parts []Part
	marker := 0
	for range 100 { // 1000 parts an answer, 10000 at most
		q := url.Values{"uploadId": {id}}
		if marker > 0 {
			q.Set("part-number-marker", strconv.Itoa(marker))
		}
		r, err := c.do(ctx, request{op: "ListParts " + key, method: http.MethodGet, key: key, query: q})
		if err != nil {
			return nil, err
		}
		x, err := parseListParts(r.body)
		if err != nil {
			return nil, err
		}
		parts = append(parts, x.Parts...)
		if !x.IsTruncated || x.NextMarker <= marker {
			return parts, nil
		}
		marker = x.NextMarker
	}
	return parts, nil
}

// completeUpload joins the parts into the object key.
func (c *Client) completeUpload(ctx context.Context, key, id string, parts []Part) error {
	var x xmlComplete
	for _, p := range parts {
		x.Parts = append(x.Parts, struct {
			Number int    `xml:"PartNumber"`
			ETag   string `xml:"ETag"`
		}{p.Number, p.ETag})
	}
	body, err := xml.Marshal(x)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{op: "CompleteMultipartUpload " + key, method: http.MethodPost, key: key,
		query: url.Values{"uploadId": {id}}, body: body, header: http.Header{"Content-Type": {"application/xml"}}})
	return err
}

// abortUpload drops an upload and the parts sent.
func (c *Client) abortUpload(ctx context.Context, key, id string) error {
	_, err := c.do(ctx, request{op: "AbortMultipartUpload " + key, method: http.MethodDelete, key: key,
		query: url.Values{"uploadId": {id}}})
	return err
}

// putObject writes a small object in one request.
func (c *Client) putObject(ctx context.Context, key string, data []byte) error {
	_, err := c.do(ctx, request{op: "PutObject " + key, method: http.MethodPut, key: key, body: data,
		header: http.Header{"Content-Type": {"application/octet-stream"}}})
	return err
}

// headObject returns an object's size; ok is false if there is none.
func (c *Client) headObject(ctx context.Context, key string) (size int64, ok bool, err error) {
	r, err := c.do(ctx, request{op: "HeadObject " + key, method: http.MethodHead, key: key})
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n, _ := strconv.ParseInt(r.header.Get("Content-Length"), 10, 64)
	return n, true, nil
}

// deleteObject removes an object (no error if there is none).
func (c *Client) deleteObject(ctx context.Context, key string) error {
	_, err := c.do(ctx, request{op: "DeleteObject " + key, method: http.MethodDelete, key: key})
	return err
}

// list lists the keys under prefix, and with delim the common prefixes
// (the "directories") instead of the keys below them. max bounds the
// answer (0: all).
func (c *Client) list(ctx context.Context, prefix, delim string, max int) (keys, prefixes []string, err error) {
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if delim != "" {
			q.Set("delimiter", delim)
		}
		if max > 0 {
			q.Set("max-keys", strconv.Itoa(max))
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		r, err := c.do(ctx, request{op: fmt.Sprintf("ListObjectsV2 prefix=%q", prefix), method: http.MethodGet, query: q})
		if err != nil {
			return nil, nil, err
		}
		x, err := parseListObjects(r.body)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range x.Contents {
			keys = append(keys, o.Key)
		}
		for _, p := range x.CommonPrefixes {
			prefixes = append(prefixes, p.Prefix)
		}
		if !x.IsTruncated || x.NextToken == "" || x.NextToken == token || max > 0 {
			return keys, prefixes, nil
		}
		token = x.NextToken
	}
}
