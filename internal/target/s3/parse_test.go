// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	id, err := parseInitiate([]byte(`<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc-1</UploadId></InitiateMultipartUploadResult>`))
	if err != nil || id != "abc-1" {
		t.Errorf("parseInitiate = %q, %v; want abc-1", id, err)
	}
	if _, err := parseInitiate([]byte(`<InitiateMultipartUploadResult></InitiateMultipartUploadResult>`)); err == nil {
		t.Error("parseInitiate without UploadId: no error")
	}
	lp, err := parseListParts([]byte(`<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>` +
		`<Part><PartNumber>1</PartNumber><ETag>"aa"</ETag><Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><ETag>&quot;bb&quot;</ETag><Size>7</Size></Part></ListPartsResult>`))
	want := xmlListParts{Parts: []Part{{1, `"aa"`, 5242880}, {2, `"bb"`, 7}}, IsTruncated: true, NextMarker: 2}
	if diff := cmp.Diff(want, lp); err != nil || diff != "" {
		t.Errorf("parseListParts: %v (-want, +got):\n%s", err, diff)
	}
	lo, err := parseListObjects([]byte(`<ListBucketResult><CommonPrefixes><Prefix>p/a-20261201T000000Z/</Prefix></CommonPrefixes><Contents><Key>p/x</Key><Size>3</Size></Contents></ListBucketResult>`))
	if err != nil || len(lo.CommonPrefixes) != 1 || lo.CommonPrefixes[0].Prefix != "p/a-20261201T000000Z/" || len(lo.Contents) != 1 || lo.Contents[0].Key != "p/x" {
		t.Errorf("parseListObjects = %+v, %v", lo, err)
	}
	e, err := parseError([]byte(`<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`))
	if err != nil || e.Code != "NoSuchBucket" {
		t.Errorf("parseError = %+v, %v", e, err)
	}
}

// FuzzParse feeds the parsers of the server's answers anything: they must
// return, without panicking, and a ListParts answer never lists a part of
// negative size as if it were one.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker><Part><PartNumber>1</PartNumber><ETag>"aa"</ETag><Size>5</Size></Part></ListPartsResult>`))
	f.Add([]byte(`<InitiateMultipartUploadResult><UploadId>x</UploadId></InitiateMultipartUploadResult>`))
	f.Add([]byte(`<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>`))
	f.Add([]byte(`<Error><Code>RequestTimeTooSkewed</Code><Message>m</Message></Error>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Error><Code>&a;</Code></Error>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseError(b)
		parseInitiate(b)
		parseListObjects(b)
		lp, err := parseListParts(b)
		if err == nil && len(lp.Parts) > len(b) {
			t.Errorf("%d parts from %d bytes", len(lp.Parts), len(b))
		}
	})
}
