// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/target"
	"github.com/ukdump/ukdump/internal/target/s3/s3test"
)

const bucket = "dumps"

// keys writes the credential files and returns their paths.
func keys(t *testing.T, access, secret string) (string, string) {
	dir := t.TempDir()
	a, s := filepath.Join(dir, "access"), filepath.Join(dir, "secret")
	if err := os.WriteFile(a, []byte(access+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return a, s
}

// testLog collects the target's log lines.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newTarget(t *testing.T, srv *s3test.Server, url string, log *testLog) *Target {
	a, s := keys(t, s3test.AccessKey, s3test.SecretKey)
	return &Target{URL: url, Endpoint: srv.URL(), Region: s3test.Region, AccessKeyFile: a, SecretKeyFile: s,
		PartSize: MinPartSize, Logf: log.Printf, Backoff: 100 * time.Millisecond}
}

func open(t *testing.T, tg *Target) *Dir {
	t.Helper()
	d, err := tg.Open(context.Background())
	if err != nil {
		t.Fatalf("Open(%s) = %v", tg, err)
	}
	return d.(*Dir)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// writeDump writes data as a dump directory's vmcore, as internal/capture
// does: Create vmcore.incomplete, write, Close, Rename.
func writeDump(d target.Dir, dir string, data []byte, chunk int, between func(i int)) error {
	if err := d.Mkdir(dir); err != nil {
		return err
	}
	f, err := d.Create(dir + "/vmcore.incomplete")
	if err != nil {
		return err
	}
	for i := 0; i < len(data); i += chunk {
		if between != nil {
			between(i)
		}
		if _, err := f.Write(data[i:min(i+chunk, len(data))]); err != nil {
			f.Close()
			return err
		}
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return d.Rename(dir+"/vmcore.incomplete", dir+"/vmcore")
}

func TestUploadParts(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	d := open(t, newTarget(t, srv, "s3://dumps/fleet/crash", &log))
	defer d.Close()
	for _, tt := range []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"less than a part", 1234},
		{"exactly two parts", 2 * MinPartSize},
		{"three and a half parts", 3*MinPartSize + MinPartSize/2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size, uint64(tt.size))
			dir := "host-20261202T010203Z." + strings.ReplaceAll(tt.name, " ", "-")
			if err := writeDump(d, dir, data, 1<<20+17, nil); err != nil {
				t.Fatalf("writeDump = %v", err)
			}
			got, err := srv.Object(bucket, "fleet/crash/"+dir+"/vmcore")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("vmcore: %d bytes, want the %d written", len(got), len(data))
			}
			if _, err := srv.Object(bucket, "fleet/crash/"+dir+"/vmcore.incomplete"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("vmcore.incomplete exists (%v): the upload goes to vmcore", err)
			}
		})
	}
	if err := d.Mkdir("host-20261202T010203Z.empty"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir of a used prefix = %v, want fs.ErrExist", err)
	}
}

// TestResume kills the server mid-upload and starts it again: the upload
// goes on (the parts in flight are retried, the server's list is checked
// before completing) and the object is whole.
func TestResume(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	tg := newTarget(t, srv, "s3://dumps", &log)
	d := open(t, tg)
	defer d.Close()
	data := randomBytes(6*MinPartSize+100, 7)
	killed := false
	var wg sync.WaitGroup
	err := writeDump(d, "h-20261202T000000Z", data, 1<<20, func(off int) {
		if off >= 2*MinPartSize+MinPartSize/2 && !killed {
			killed = true
			srv.Stop()
			wg.Add(1)
			go func() { // down for 1.5s, as a restarted gateway is
				defer wg.Done()
				time.Sleep(1500 * time.Millisecond)
				srv.Restart()
			}()
		}
	})
	wg.Wait()
	if err != nil {
		t.Fatalf("writeDump across a server restart = %v\nlog:\n%s", err, &log)
	}
	got, err := srv.Object(bucket, "h-20261202T000000Z/vmcore")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("vmcore after the restart: %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("the log says nothing of retries:\n%s", &log)
	}
}

// TestServerGone: a server that stays away fails the dump with the
// network error, and no vmcore is made.
func TestServerGone(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	tg := newTarget(t, srv, "s3://dumps", &log)
	tg.Retries = 2
	d := open(t, tg)
	data := randomBytes(3*MinPartSize, 3)
	err := writeDump(d, "h-20261202T000000Z", data, 1<<20, func(off int) {
		if off == MinPartSize {
			srv.Stop()
		}
	})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("writeDump with the server gone = %v, want connection refused", err)
	}
	srv.Restart()
	if err := d.Close(); err != nil {
		t.Errorf("Close (abort) = %v", err)
	}
	if !strings.Contains(log.String(), "aborted the upload") {
		t.Errorf("the log does not say the upload was aborted:\n%s", &log)
	}
	if _, err := srv.Object(bucket, "h-20261202T000000Z/vmcore"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("vmcore exists after a failed upload (%v)", err)
	}
}

// TestAbort: a dump never renamed (the copy failed) is aborted on Close;
// the side files stay.
func TestAbort(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	d := open(t, newTarget(t, srv, "s3://dumps/p", &log))
	dir := "h-20261202T000000Z"
	if err := d.Mkdir(dir); err != nil {
		t.Fatal(err)
	}
	f, err := d.Create(dir + "/vmcore.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(MinPartSize+5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := d.Create(dir + "/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(m, `{"complete": false}`)
	if err := m.Close(); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := srv.Object(bucket, "p/"+dir+"/vmcore"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("vmcore exists after an aborted upload (%v)", err)
	}
	if got, err := srv.Object(bucket, "p/"+dir+"/manifest.json"); err != nil || string(got) != `{"complete": false}` {
		t.Errorf("manifest.json = %q, %v", got, err)
	}
	// No upload is left for the lifecycle rule.
	d2 := open(t, newTarget(t, srv, "s3://dumps/p", &log))
	defer d2.Close()
	r, err := d2.c.do(context.Background(), request{op: "ListMultipartUploads", method: "GET", query: map[string][]string{"uploads": {""}}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(r.body, []byte("<UploadId>")) {
		t.Errorf("uploads left after the abort:\n%s", r.body)
	}
}

func TestOpenErrors(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	for _, tt := range []struct {
		name           string
		url            string
		access, secret string
		want           []string
	}{
		{"wrong secret", "s3://dumps", s3test.AccessKey, "wrong", []string{"403", "SignatureDoesNotMatch", "check secret_key_file"}},
		{"unknown access key", "s3://dumps", "nobody", s3test.SecretKey, []string{"the server does not know this access key: check access_key_file"}},
		{"missing bucket", "s3://nosuchbucket/x", s3test.AccessKey, s3test.SecretKey, []string{`bucket "nosuchbucket"`, "404", "NoSuchBucket", "create it"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, srv, tt.url, &log)
			tg.AccessKeyFile, tg.SecretKeyFile = keys(t, tt.access, tt.secret)
			_, err := tg.Open(context.Background())
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Open = %v, want an error containing %q", err, w)
				}
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		tg := newTarget(t, srv, "s3://dumps", &log)
		tg.Endpoint = "http://127.0.0.1:1"
		if _, err := tg.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("Open = %v, want connection refused", err)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		tg := newTarget(t, srv, "s3://dumps", &log)
		tg.SecretKeyFile = filepath.Join(t.TempDir(), "none")
		if _, err := tg.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "secret_key_file") {
			t.Errorf("Open = %v, want secret_key_file's error", err)
		}
	})
}

// TestClockSkew: a capture kernel whose clock is two hours behind signs
// with the server's time once the server says the request is skewed.
func TestClockSkew(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	tg := newTarget(t, srv, "s3://dumps", &log)
	tg.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	d := open(t, tg)
	defer d.Close()
	data := randomBytes(MinPartSize+1, 2)
	if err := writeDump(d, "h-20261202T000000Z", data, 1<<20, nil); err != nil {
		t.Fatalf("writeDump with a skewed clock = %v", err)
	}
	// The Date header has whole seconds: 1h59m59s or 2h0m0s.
	if !regexp.MustCompile(`the server's clock is (2h0m0s|1h59m59s) from ours`).MatchString(log.String()) {
		t.Errorf("the log does not give the correction:\n%s", &log)
	}
}

// TestRetention: keep counts only this host's dump prefixes, through
// target.Prune over the bucket's listing.
func TestRetention(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	d := open(t, newTarget(t, srv, "s3://dumps/shared", &log))
	defer d.Close()
	names := []string{"a-20261201T000000Z", "b-20261201T000001Z", "a-20261201T000002Z", "a-20261201T000003Z", "b-20261201T000004Z", "notadump"}
	for _, n := range names {
		for _, f := range []string{"manifest.json", "ukdump.log"} {
			o, _ := d.Create(n + "/" + f)
			io.WriteString(o, "x")
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(names))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want, +got):\n%s", diff)
	}
	removed, err := target.Prune(d, target.Retention{Host: "a", Keep: 2, Exclude: "a-20261201T000003Z"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a-20261201T000000Z"}, removed); diff != "" {
		t.Errorf("Prune removed (-want, +got):\n%s", diff)
	}
	got, _ = d.List()
	slices.Sort(got)
	if diff := cmp.Diff([]string{"a-20261201T000002Z", "a-20261201T000003Z", "b-20261201T000001Z", "b-20261201T000004Z", "notadump"}, got); diff != "" {
		t.Errorf("after Prune (-want, +got):\n%s", diff)
	}
}

// stream is a generated dump of n bytes: no file, no buffer behind it.
type stream struct{ n, off int64 }

func (s *stream) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.n-s.off)]
	for i := range p {
		p[i] = byte((s.off + int64(i)) * 2654435761 >> 13)
	}
	s.off += int64(len(p))
	return len(p), nil
}

// TestMemoryBounded uploads a 2 GiB stream: the heap stays within the
// part buffers ((InFlight+1) × PartSize) and a margin, whatever the size.
func TestMemoryBounded(t *testing.T) {
	srv := s3test.Start(t, bucket)
	var log testLog
	tg := newTarget(t, srv, "s3://dumps", &log)
	tg.PartSize, tg.InFlight = MinPartSize, 2
	d := open(t, tg)
	defer d.Close()
	const size = 2 << 30
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	if err := d.Mkdir("h-20261202T000000Z"); err != nil {
		t.Fatal(err)
	}
	f, err := d.Create("h-20261202T000000Z/vmcore.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := io.CopyBuffer(f, &stream{n: size}, make([]byte, 1<<20))
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = d.Rename("h-20261202T000000Z/vmcore.incomplete", "h-20261202T000000Z/vmcore")
	}
	close(stop)
	wg.Wait()
	if err != nil || n != size {
		t.Fatalf("upload of 2 GiB: %d bytes, %v", n, err)
	}
	el := time.Since(start)
	fi, err := os.Stat(filepath.Join(srv.Root, bucket, "h-20261202T000000Z", "vmcore"))
	if err != nil || fi.Size() != size {
		t.Fatalf("vmcore: %v, %v", fi, err)
	}
	// The live data is three part buffers and the copy buffer (16 MiB); with
	// GOGC=100 the heap may grow to twice that before a collection, plus the
	// rest of the test binary. What matters is that it does not grow with
	// the 2 GiB streamed (measured: at most 30 MiB).
	bound := uint64(2*(3*MinPartSize+1<<20) + 16<<20)
	t.Logf("2 GiB in %s (%.0f MB/s), heap in use at most %.1f MiB (bound %.1f MiB)", el.Round(time.Millisecond),
		float64(size)/el.Seconds()/1e6, float64(peak)/(1<<20), float64(bound)/(1<<20))
	if peak > bound {
		t.Errorf("heap in use reached %d bytes uploading 2 GiB, over %d", peak, bound)
	}
}
