package kexec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// bzImage returns a synthetic bzImage: a setup header with the given boot
// protocol version, xloadflags and init_size, padded to 4 KiB.
func bzImage(version, xloadflags uint16, initSize uint32) []byte {
	b := make([]byte, 4096)
	b[0x1f1] = 4 // setup_sects
	binary.LittleEndian.PutUint16(b[0x1fe:], 0xaa55)
	copy(b[hdrMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(b[hdrVersionOff:], version)
	binary.LittleEndian.PutUint16(b[xloadflagsOff:], xloadflags)
	binary.LittleEndian.PutUint32(b[initSizeOff:], initSize)
	return b
}

func TestKernelInitSize(t *testing.T) {
	for _, tt := range []struct {
		name    string
		image   []byte
		want    uint64
		wantErr error
	}{
		{name: "2.15 64-bit", image: bzImage(0x020f, 0x7f, 0x3f98000), want: 0x3f98000},
		{name: "2.10 has no xloadflags", image: bzImage(0x020a, 0, 1<<24), want: 1 << 24},
		{name: "2.09", image: bzImage(0x0209, 0x7f, 1<<24), wantErr: ErrNotBzImage},
		{name: "32-bit", image: bzImage(0x020f, 0, 1<<24), wantErr: ErrNotBzImage},
		{name: "no magic", image: append([]byte("\x7fELF"), make([]byte, 4096)...), wantErr: ErrNotBzImage},
		{name: "short", image: []byte("#!/bin/sh\n"), wantErr: ErrNotBzImage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KernelInitSize(bytes.NewReader(tt.image))
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("KernelInitSize() = %#x, %v; want %#x, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// debianKernel is on this machine and in CI (DESIGN.md "Facts measured").
const debianKernel = "/boot/vmlinuz-6.1.0-56-amd64"

// TestDebianKernelNeeds checks the formula against what was measured with
// Debian's 6.1 kernel and a 3.56 MB gz image: crashkernel=96M works, 88M is
// flaky and 64M fails.
func TestDebianKernelNeeds(t *testing.T) {
	f, err := os.Open(debianKernel)
	if err != nil {
		t.Fatalf("the measured kernel must be installed (linux-image-6.1.0-56-amd64): %v", err)
	}
	defer f.Close()
	initSize, err := KernelInitSize(f)
	if err != nil {
		t.Fatalf("KernelInitSize(%s) = %v", debianKernel, err)
	}
	if mb := initSize >> 20; mb < 60 || mb > 68 {
		t.Errorf("KernelInitSize(%s) = %d MiB, want ~63.6 MiB as measured", debianKernel, mb)
	}
	need := RequiredBytes(int64(initSize), 3_500_000, 9_000_000)
	for _, tt := range []struct {
		crashkernel int64
		fits        bool
	}{{64, false}, {88, false}, {96, true}, {128, true}} {
		if got := need <= tt.crashkernel<<20; got != tt.fits {
			t.Errorf("RequiredBytes = %.1f MiB fits crashkernel=%dM: %v, want %v", mib(need), tt.crashkernel, got, tt.fits)
		}
	}
	if got := CrashkernelMiB(need); got != 96 {
		t.Errorf("CrashkernelMiB(%d) = %d, want 96", need, got)
	}
}

func TestCrashkernelMiB(t *testing.T) {
	for _, tt := range []struct{ need, want int64 }{
		{1, 16}, {16 << 20, 16}, {16<<20 + 1, 32}, {92 << 20, 96}, {96 << 20, 96}, {97 << 20, 112},
	} {
		if got := CrashkernelMiB(tt.need); got != tt.want {
			t.Errorf("CrashkernelMiB(%d) = %d, want %d", tt.need, got, tt.want)
		}
	}
}

func TestRequiredBytes(t *testing.T) {
	if got, want := RequiredBytes(64<<20, 4<<20, 10<<20), int64(78<<20+RuntimeMargin); got != want {
		t.Errorf("RequiredBytes(64 MiB, 4 MiB, 10 MiB) = %d, want %d", got, want)
	}
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEstimateUnpacked(t *testing.T) {
	zstd := func(hdr ...byte) []byte {
		return append(append([]byte{0x28, 0xb5, 0x2f, 0xfd}, hdr...), make([]byte, 994)...)
	}
	gz := gzipped(t, bytes.Repeat([]byte("ukdump "), 300_000))
	for _, tt := range []struct {
		name       string
		data       []byte
		want       int64
		wantFormat string
	}{
		{name: "gzip", data: gz, want: 2_100_000, wantFormat: "gzip"},
		{name: "zstd single segment 1-byte size", data: zstd(0x20, 200), want: 1000, wantFormat: "zstd"},
		{name: "zstd 2-byte size", data: zstd(0x40, 0x58, 0x00, 0x10), want: 0x1000 + 256, wantFormat: "zstd"},
		{name: "zstd 4-byte size with dictionary", data: zstd(0x81, 0x58, 7, 0, 0, 0x40, 0), want: 0x400000, wantFormat: "zstd"},
		{name: "zstd 8-byte size", data: zstd(0xe0, 0, 0, 0, 0, 1, 0, 0, 0), want: 1 << 32, wantFormat: "zstd"},
		{name: "zstd no size", data: zstd(0x00, 0x58), want: 3000, wantFormat: "zstd"},
		{name: "xz", data: append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 94)...), want: 300, wantFormat: "xz"},
		{name: "cpio", data: append([]byte("070701"), make([]byte, 506)...), want: 512, wantFormat: "cpio"},
		{name: "unknown", data: make([]byte, 100), want: 300, wantFormat: "unknown"},
		{name: "empty", data: nil, want: 0, wantFormat: "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, format, err := estimateUnpacked(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err != nil || got != tt.want || format != tt.wantFormat {
				t.Errorf("estimateUnpacked(%d bytes) = %d, %q, %v; want %d, %q, nil", len(tt.data), got, format, err, tt.want, tt.wantFormat)
			}
		})
	}
}
