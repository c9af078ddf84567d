// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/kexec"
	"github.com/ukdump/ukdump/internal/layout"
)

// Record says what went into an image: enough to tell, before loading it,
// that it belongs to another kernel or that its inputs have changed since
// (it is stale). ukdump build writes it into the image (layout.RecordPath)
// and beside it (IMAGE + layout.RecordSuffix).
type Record struct {
	// KernelRelease is the kernel whose modules are in the image.
	KernelRelease string `json:"kernel_release"`
	// Version is the ukdump that built it.
	Version string `json:"ukdump_version"`
	// Config, Busybox and Files are the sha256 of the config file as
	// given, of the busybox, and of each host file baked in (SSH identity,
	// known_hosts), by its path in the image.
	Config  string            `json:"config_sha256"`
	Busybox string            `json:"busybox_sha256"`
	Files   map[string]string `json:"files_sha256,omitempty"`
	// Devices are the disk targets without a device, as resolved.
	Devices []string `json:"devices,omitempty"`
	// RuntimeBytes is the memory the capture needs beyond the kernel, the
	// image and kexec.RuntimeMargin (config.RuntimeBytes: an S3 upload's
	// part buffers); ukdump load adds it to the reservation needed. It
	// follows from the config, whose hash is in Config.
	RuntimeBytes int64 `json:"runtime_bytes,omitempty"`
	// LargestModule is Result.LargestModule: ukdump load adds
	// kexec.ModuleBytes of it to the reservation needed. Written beside the
	// image only (it is known once the image is built), and not compared
	// by Stale: it follows from the kernel release and the modules chosen.
	LargestModule int64 `json:"largest_module_bytes,omitempty"`
	// CPUs is the config's collect.cpus: ukdump load brings up that many
	// CPUs in the capture kernel (nr_cpus=) and counts their memory. It
	// follows from the config, whose hash is in Config.
	CPUs int `json:"capture_cpus,omitempty"`
}

// ExtraBytes is what the capture of this image needs beyond
// kexec.RequiredBytes and the machine's part: its targets' buffers and
// the loading of its largest module.
func (r Record) ExtraBytes() int64 {
	return r.RuntimeBytes + kexec.ModuleBytes(r.LargestModule)
}

// Marshal is the record as JSON.
func (r Record) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("image record: %w", err)
	}
	return append(b, '\n'), nil
}

// Stale lists how the record current (what an image built now would hold)
// differs from r; nil means r's image is current.
func (r Record) Stale(current Record) []string {
	var why []string
	diff := func(what, old, now string) {
		if old != now {
			why = append(why, fmt.Sprintf("%s changed (%s → %s)", what, short(old), short(now)))
		}
	}
	diff("kernel release", r.KernelRelease, current.KernelRelease)
	diff("ukdump version", r.Version, current.Version)
	diff("config", r.Config, current.Config)
	diff("busybox", r.Busybox, current.Busybox)
	for _, k := range slices.Sorted(maps.Keys(joinKeys(r.Files, current.Files))) {
		diff(k, r.Files[k], current.Files[k])
	}
	if !slices.Equal(r.Devices, current.Devices) {
		why = append(why, fmt.Sprintf("resolved devices changed (%s → %s)", strings.Join(r.Devices, "; "), strings.Join(current.Devices, "; ")))
	}
	return why
}

func joinKeys(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, b)
	return m
}

// short abbreviates a hash for a message.
func short(s string) string {
	if s == "" {
		return "none"
	}
	if len(s) == 64 {
		return s[:12]
	}
	return s
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Resolved is a disk target without a device, resolved on the build machine.
type Resolved struct {
	Target int
	FS     hostfs.FS
}

func (r Resolved) String() string {
	return fmt.Sprintf("target %d: %s path %s", r.Target, r.FS.Spec, r.FS.FSPath)
}

// resolveDevices gives each disk target without a device the UUID= of the
// file system that holds its path, and the path within that file system.
func resolveDevices(c *config.Config, resolve func(string) (hostfs.FS, error)) ([]Resolved, error) {
	if resolve == nil {
		resolve = func(p string) (hostfs.FS, error) { return hostfs.Resolve(p, hostfs.Opts{}) }
	}
	var rs []Resolved
	for i := range c.Targets {
		t := &c.Targets[i]
		if !t.AutoDevice() {
			continue
		}
		fs, err := resolve(t.Path)
		if err != nil {
			return nil, fmt.Errorf("target[%d] (device omitted: the file system that holds %s here): %w", i, t.Path, err)
		}
		t.Device, t.Path = fs.Spec, fs.FSPath
		rs = append(rs, Resolved{Target: i, FS: fs})
	}
	return rs, nil
}

// ErrNoRecord is returned by ReadRecord for an image without a record
// (built before records, or not by ukdump build).
var ErrNoRecord = errors.New("no image record")

// ReadRecord reads the record of the image at path: beside it if there is
// one, else from the image itself. An image without a record gives the
// kernel release of its modules directory, if it has one, and ErrNoRecord
// otherwise.
func ReadRecord(path string) (Record, error) {
	if b, err := os.ReadFile(path + layout.RecordSuffix); err == nil {
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return Record{}, fmt.Errorf("%s%s: %w", path, layout.RecordSuffix, err)
		}
		return r, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	cr, err := Uncompressed(f)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", path, err)
	}
	rr := cpio.Newc.Reader(readerAt(cr))
	var rec Record
	found := false
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Record{}, fmt.Errorf("%s: reading the cpio: %w", path, err)
		}
		name := strings.TrimPrefix(r.Name, "./")
		switch {
		case name == layout.RecordPath:
			b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil {
				return Record{}, fmt.Errorf("%s: %s: %w", path, layout.RecordPath, err)
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				return Record{}, fmt.Errorf("%s: %s: %w", path, layout.RecordPath, err)
			}
			return rec, nil
		case strings.HasPrefix(name, layout.ModulesDir+"/") && !found:
			if rel, _, _ := strings.Cut(strings.TrimPrefix(name, layout.ModulesDir+"/"), "/"); rel != "" {
				rec.KernelRelease, found = rel, true
			}
		}
	}
	if found {
		return rec, fmt.Errorf("%s: %w (its modules are for %s)", path, ErrNoRecord, rec.KernelRelease)
	}
	return Record{}, fmt.Errorf("%s: %w", path, ErrNoRecord)
}

// Uncompressed undoes an image's compression, found by its magic: the cpio.
func Uncompressed(r io.Reader) (io.Reader, error) {
	var magic [6]byte
	n, _ := io.ReadFull(r, magic[:])
	all := io.MultiReader(bytes.NewReader(magic[:n]), r)
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return gzip.NewReader(all)
	case n >= 4 && string(magic[:4]) == "\x28\xb5\x2f\xfd":
		d, err := zstd.NewReader(all)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case n >= 6 && string(magic[:6]) == "\xfd7zXZ\x00":
		return xz.NewReader(all)
	case n >= 6 && string(magic[:6]) == "070701":
		return all, nil
	}
	return nil, fmt.Errorf("not a capture image: starts with %q (want gzip, zstd, xz or a newc cpio)", magic[:n])
}

// readerAt serves a stream to the cpio reader, which reads in order.
func readerAt(r io.Reader) io.ReaderAt { return &seqReaderAt{r: r} }

type seqReaderAt struct {
	r   io.Reader
	off int64
}

func (s *seqReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < s.off {
		return 0, fmt.Errorf("cpio: backwards read at %d (at %d)", off, s.off)
	}
	if off > s.off {
		if _, err := io.CopyN(io.Discard, s.r, off-s.off); err != nil {
			return 0, err
		}
		s.off = off
	}
	n, err := io.ReadFull(s.r, p)
	s.off += int64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}
