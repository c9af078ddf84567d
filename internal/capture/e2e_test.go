// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/target"
)

// recFile is a target file that records its bytes and the calls made on it
// in one event list shared with the test's die function.
type recFile struct {
	data   []byte
	events *[]string
}

func (f *recFile) Write(p []byte) (int, error) {
	*f.events = append(*f.events, "write")
	f.data = append(f.data, p...)
	return len(p), nil
}

func (f *recFile) Sync() error  { *f.events = append(*f.events, "sync"); return nil }
func (f *recFile) Close() error { *f.events = append(*f.events, "close"); return nil }

// recFileAt adds WriteAt and ReadAt, as a file on a disk target has.
type recFileAt struct{ recFile }

func (f *recFileAt) WriteAt(p []byte, off int64) (int, error) {
	*f.events = append(*f.events, "writeat")
	if end := int(off) + len(p); end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	return copy(f.data[off:], p), nil
}

func (f *recFileAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	return copy(p, f.data[off:]), nil
}

func testCapture(cmdline string) (*capture, *bytes.Buffer) {
	var console bytes.Buffer
	return &capture{cmdline: cmdline, log: newLogger(&console, nil, time.Now)}, &console
}

func TestE2EHooksOff(t *testing.T) {
	for _, tt := range []struct {
		name, cmdline, log string
	}{
		{name: "no word", cmdline: "console=ttyS0 ukdump.e2e.fill=100 panic=10"},
		{name: "other key", cmdline: "ukdump.e2e.kill_afterwards=5"},
		{name: "not a number", cmdline: "ukdump.e2e.kill_after=10MiB", log: "want a byte count"},
		{name: "negative", cmdline: "ukdump.e2e.kill_after=-1", log: "want a byte count"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, console := testCapture(tt.cmdline)
			var events []string
			f := &recFileAt{recFile{events: &events}}
			got := c.e2eWrap(f, func() { t.Error("die called") })
			if got != target.File(f) {
				t.Errorf("e2eWrap(%q) = %T, want the file itself", tt.cmdline, got)
			}
			if tt.log == "" && console.Len() > 0 || !strings.Contains(console.String(), tt.log) {
				t.Errorf("e2eWrap(%q) logged %q, want %q", tt.cmdline, console.String(), tt.log)
			}
		})
	}
}

// TestE2EKillAfter writes through the hook as the writers do (Write for the
// ELF format, WriteAt for the kdump format, both mixed here) and checks that
// exactly the limit reaches the file, that it is synced before the death,
// and that nothing is closed, renamed or written after it.
func TestE2EKillAfter(t *testing.T) {
	for _, tt := range []struct {
		name   string
		limit  int
		at     bool // the file has WriteAt and ReadAt
		writes []int
		want   []string
		data   string
		killed bool
	}{
		{name: "cut mid write", limit: 10, at: true, writes: []int{4, 4, 4, 4},
			want: []string{"write", "writeat", "write", "sync", "die"}, data: "aaaabbbbcc", killed: true},
		{name: "exact end of a write", limit: 8, at: true, writes: []int{4, 4, 4},
			want: []string{"write", "writeat", "sync", "die"}, data: "aaaabbbb", killed: true},
		{name: "stream file", limit: 6, writes: []int{4, 4, 4},
			want: []string{"write", "write", "sync", "die"}, data: "aaaabb", killed: true},
		{name: "never reached", limit: 100, at: true, writes: []int{4, 4},
			want: []string{"write", "writeat"}, data: "aaaabbbb"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, console := testCapture("console=ttyS0 ukdump.e2e.kill_after=" + strconv.Itoa(tt.limit) + " panic=10")
			var events []string
			var f target.File = &recFile{events: &events}
			if tt.at {
				f = &recFileAt{recFile{events: &events}}
			}
			w := c.e2eWrap(f, func() { events = append(events, "die") })
			wa, isAt := w.(io.WriterAt)
			if _, ok := w.(io.ReaderAt); isAt != tt.at || ok != tt.at {
				t.Fatalf("e2eWrap(%T) = %T: WriterAt %v, ReaderAt %v; want both %v", f, w, isAt, ok, tt.at)
			}
			var off int64
			var killed bool
			for i, n := range tt.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				var got int
				var err error
				if isAt && i%2 == 1 {
					got, err = wa.WriteAt(p, off)
				} else {
					got, err = w.Write(p)
				}
				off += int64(got)
				if killed && (got != 0 || !errors.Is(err, errE2EKilled)) {
					t.Errorf("write %d after the kill = %d, %v; want 0, %v", i, got, err, errE2EKilled)
				}
				killed = killed || err != nil
			}
			if diff := cmp.Diff(tt.want, events); diff != "" {
				t.Errorf("calls on the file (-want, +got):\n%s", diff)
			}
			var data []byte
			switch f := f.(type) {
			case *recFile:
				data = f.data
			case *recFileAt:
				data = f.data
			}
			if string(data) != tt.data {
				t.Errorf("the file holds %q, want %q", data, tt.data)
			}
			if killed != tt.killed {
				t.Errorf("a write failed after the kill: %v, want %v", killed, tt.killed)
			}
			if want := "ukdump.e2e.kill_after: " + strconv.Itoa(tt.limit) + " bytes written; dying now"; killed && !strings.Contains(console.String(), want) {
				t.Errorf("console %q does not say the capture dies", console.String())
			}
		})
	}
}

func TestE2EHooksProduction(t *testing.T) {
	// Without the word, the production hook is a no-op: it must never
	// reach os.Exit.
	c, _ := testCapture("console=ttyS0 panic=10")
	var events []string
	f := &recFile{events: &events}
	if got := c.e2eHooks(f); got != target.File(f) {
		t.Errorf("e2eHooks(%T) = %T, want the file itself", f, got)
	}
}
