// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RuntimeMargin is the memory, beyond the kernel's init_size and the initrd
// (compressed and unpacked), that the capture kernel and our capture program
// need to run: page tables, slab, module loading, network and I/O buffers.
//
// Measured (DESIGN.md, Debian 6.1 kernel with init_size 63.6 MiB, 3.56 MB gz
// image of ~9 MB unpacked): crashkernel=96M always works, leaving ~20 MiB over
// the kernel+image; 88M, leaving ~12 MiB, hangs before /init now and then.
// In our e2e a 3.9 MB gz / 10.9 MiB image (disk and network) at 96M, which
// a 16 MiB margin let through (94.3 MiB "needed"), ran out of memory while
// booting; a 3.1 MB / 8.4 MiB image at 96M saves its dump every time. 18 MiB
// refuses the first and passes the second.
const RuntimeMargin = 18 << 20

// MarginModule is the largest module of the images RuntimeMargin was
// measured with: ext4.ko of Debian's 6.1.0-57, 2064785 bytes.
const MarginModule = 2064785

// ModuleBytes is what loading a module of size bytes (decompressed) needs
// beyond RuntimeMargin, which was measured with ext4.ko the largest:
// ModuleFactor times its excess over MarginModule. finit_module reads the
// whole file into a buffer, then allocates the module's own copy
// (module_alloc), its symbol tables and its BTF, while the file itself stays
// in the rootfs.
//
// Measured (2026-12-02, 1 GiB guest, 6.1.0-57, installed-system e2e): an
// image with xfs.ko (4215817 bytes; 97.7 MiB needed without this term) ran
// out of memory in load_module while loading xfs at crashkernel=98M and at
// 103M ("System is deadlocked on memory"), and saved its dump at 112M; its
// LVM twin (96.7 MiB) did so at 97M. An image whose largest module is
// ext4.ko (94.1 MiB) saved its dump at 95M. The factor is therefore over
// 2.6 (103M failed) and under 7 (112M worked); 4 asks for 105.9 MiB there.
func ModuleBytes(size int64) int64 { return ModuleFactor * max(0, size-MarginModule) }

// ModuleFactor: see ModuleBytes.
const ModuleFactor = 4

// PerCaptureCPU is what each CPU of the capture kernel past the first
// costs (collect.cpus, nr_cpus=): the kernel's per-CPU areas, idle task
// and stacks, and ukdump's second compressor and pipeline buffers.
//
// Measured: see docs/design.md, "CPUs in the capture kernel".
const PerCaptureCPU = 1536 << 10

// CaptureCPUBytes is what a capture kernel of cpus CPUs needs beyond one.
func CaptureCPUBytes(cpus int) int64 { return int64(max(cpus-1, 0)) * PerCaptureCPU }

// crashkernelStep is what CrashkernelMiB rounds up to.
const crashkernelStep = 16 << 20

// ErrNotBzImage is returned by KernelInitSize for a file without an x86
// bzImage setup header.
var ErrNotBzImage = errors.New("not an x86 bzImage kernel")

// x86 boot protocol setup header fields (Documentation/arch/x86/boot.rst).
const (
	hdrMagicOff   = 0x202 // "HdrS"
	hdrVersionOff = 0x206 // u16 protocol version, e.g. 0x020f
	xloadflagsOff = 0x236 // u16, protocol >= 2.12; bit 0 XLF_KERNEL_64
	initSizeOff   = 0x260 // u32, protocol >= 2.10
)

// KernelInitSize returns init_size from the setup header of an x86 bzImage:
// the memory the kernel needs from its load address to decompress and start,
// which is what it occupies in the crash reservation. It checks the "HdrS"
// magic at 0x202, boot protocol >= 2.10 and, from 2.12, that the kernel is 64-bit.
func KernelInitSize(bzImage io.ReaderAt) (uint64, error) {
	var hdr [initSizeOff + 4]byte
	if _, err := bzImage.ReadAt(hdr[:], 0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: shorter than a setup header", ErrNotBzImage)
		}
		return 0, fmt.Errorf("reading the bzImage setup header: %w", err)
	}
	if m := hdr[hdrMagicOff : hdrMagicOff+4]; string(m) != "HdrS" {
		return 0, fmt.Errorf("%w: no \"HdrS\" magic at %#x (found %q)", ErrNotBzImage, hdrMagicOff, m)
	}
	le := binary.LittleEndian
	v := le.Uint16(hdr[hdrVersionOff:])
	if v < 0x020a {
		return 0, fmt.Errorf("%w: boot protocol %d.%02d has no init_size (2.10 or later needed)", ErrNotBzImage, v>>8, v&0xff)
	}
	if xl := le.Uint16(hdr[xloadflagsOff:]); v >= 0x020c && xl&1 == 0 {
		return 0, fmt.Errorf("%w: not a 64-bit kernel (xloadflags %#x)", ErrNotBzImage, xl)
	}
	return uint64(le.Uint32(hdr[initSizeOff:])), nil
}

// RequiredBytes estimates the crash reservation a capture needs on a machine
// of nothing (see MachineBytes for what the crashed machine adds): the
// kernel's init_size, the initrd as loaded (compressed) and unpacked into the
// rootfs (both exist while the kernel unpacks it), and RuntimeMargin.
func RequiredBytes(initSize, initrdCompressed, initrdUncompressed int64) int64 {
	return initSize + initrdCompressed + initrdUncompressed + RuntimeMargin
}

// Machine is what of the crashed machine costs the capture memory.
type Machine struct {
	// RAM is the machine's memory in bytes.
	RAM int64
	// CPUs is its possible CPUs: the kernel keeps a crash note for each.
	CPUs int
	// RAMRanges is its System RAM ranges: the PT_LOADs of /proc/vmcore.
	RAMRanges int
}

// What one CPU, one RAM range and the RAM of the crashed machine cost the
// capture, kernel and ukdump together.
//
// The kernel's part follows from its structures: per CPU, a program header
// of the ELF core header kexec_file_load puts in the reservation (56 bytes),
// its copy in the capture kernel's /proc/vmcore (56) and the CPU's
// NT_PRSTATUS note in the merged notes buffer (356); per RAM range, the two
// program headers and a struct vmcore (64). The capture kernel holds no
// struct page or anything else for the old memory it reads (mmap of
// /proc/vmcore maps windows of it), so the kernel's part has no RAM term.
//
// ukdump's part is measured. Per CPU and per PT_LOAD (collect's
// TestHeapPerCPUAndPTLoad, which checks these bounds): opening the core and
// writing kdump or flattened kdump, the heap grows by 1.0-1.3 KiB per CPU
// (the notes are copied into the dump's sub-header and a stream record) and
// 0.3-0.6 KiB per PT_LOAD; those count twice, as the Go heap may grow to
// twice what is live before the collector runs. With RAM (collect's
// TestPeakHeapIndependentOfMachineSize, which checks ProcessWindows): the
// heap peaks 0.7-0.8 MiB (kdump) and 1.0-1.5 MiB (filtered ELF) higher for
// a 1 TiB machine than for a 1 GiB one, the mem_map walk's and the writers'
// bitmaps growing to a whole window (2^20 pfns: 4 GiB of RAM) and no
// further; it was 68 MiB higher before the windows. In QEMU (e2e kdump and
// big64, zlib, dump level 31, crashkernel=96M) the capture's peak RSS was
// 9724 kB for a 1 GiB guest and 10552 kB for a 64 GiB one, leaving 12544 and
// 11856 kB available after the dump; with a 1 MiB buffer for the sha256
// read-back, 10860 and 10688 kB, leaving 11232 and 11216 kB; a 256 GiB guest
// (zstd, by hand with integration/cmd/crashvm) peaked at 11584 kB, leaving
// 10968 kB. The step is within 1 MiB of RSS, and counted once.
const (
	// ProcessPerCPU and ProcessPerRange bound ukdump's heap per CPU and per
	// PT_LOAD of the crashed machine; ProcessWindows its growth with RAM,
	// reached at 4 GiB (the size of a window) and flat after.
	ProcessPerCPU   = 1536
	ProcessPerRange = 768
	ProcessWindows  = 2 << 20

	kernelPerCPU   = 56 + 56 + 356
	kernelPerRange = 56 + 56 + 64

	// PerCPU and PerRange are the need per CPU and per RAM range.
	PerCPU   = kernelPerCPU + 2*ProcessPerCPU
	PerRange = kernelPerRange + 2*ProcessPerRange
)

// windowRAM is the RAM whose page frames make one window of the collector
// (2^20 pfns of 4 KiB).
const windowRAM = 4 << 30

// MachineBytes is what the crashed machine m adds to RequiredBytes: PerCPU
// for each CPU, PerRange for each RAM range, and ProcessWindows in
// proportion to the RAM up to 4 GiB.
func MachineBytes(m Machine) int64 {
	ram := min(max(m.RAM, 0), windowRAM)
	return int64(max(m.CPUs, 0))*PerCPU + int64(max(m.RAMRanges, 0))*PerRange + ram*(ProcessWindows/(1<<20))/(windowRAM>>20)
}

// CrashkernelMiB is the crashkernel= value, in MiB, to suggest for need bytes:
// need rounded up to a multiple of 16 MiB.
func CrashkernelMiB(need int64) int64 {
	return (need + crashkernelStep - 1) / crashkernelStep * (crashkernelStep >> 20)
}

func needBreakdown(initSize, compressed, unpacked, extra int64, cpus int, m Machine) string {
	s := fmt.Sprintf("kernel init_size %.1f + initrd %.1f unpacked + %.1f compressed + %d margin + %.1f for this machine (%s RAM in %d ranges, %d CPUs)",
		mib(initSize), mib(unpacked), mib(compressed), RuntimeMargin>>20, mib(MachineBytes(m)), gib(m.RAM), m.RAMRanges, m.CPUs)
	if cpus > 1 {
		s += fmt.Sprintf(" + %.1f for the capture kernel's %d CPUs", mib(CaptureCPUBytes(cpus)), cpus)
	}
	if extra > 0 {
		s += fmt.Sprintf(" + %.1f for the targets and the largest module (S3 part buffers, module loading)", mib(extra))
	}
	return s
}

func gib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB" }

// unknownRatio is the unpacked/compressed ratio assumed when the format does
// not record the unpacked size (xz, lzma, bzip2, lz4, lzo, unknown).
const unknownRatio = 3

// estimateUnpacked estimates the unpacked size of an initrd of size bytes
// from its format: gzip's ISIZE trailer, zstd's frame content size, the size
// itself for an uncompressed cpio, unknownRatio times the size otherwise.
// It only looks at the first format found, so an initrd made of several
// concatenated archives is estimated from the first one's format.
func estimateUnpacked(r io.ReaderAt, size int64) (unpacked int64, format string, err error) {
	var head [18]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, "", fmt.Errorf("reading the initrd header: %w", err)
	}
	h := head[:n]
	switch {
	case bytes.HasPrefix(h, []byte{0x1f, 0x8b}) && size >= 18:
		var tail [4]byte
		if _, err := r.ReadAt(tail[:], size-4); err != nil {
			return 0, "", fmt.Errorf("reading the gzip trailer: %w", err)
		}
		// ISIZE is the unpacked size mod 2^32, of the last member only.
		return max(int64(binary.LittleEndian.Uint32(tail[:])), size), "gzip", nil
	case bytes.HasPrefix(h, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		if fcs, ok := zstdContentSize(h); ok {
			return max(int64(fcs), size), "zstd", nil
		}
		return unknownRatio * size, "zstd", nil
	case bytes.HasPrefix(h, []byte("0707")):
		return size, "cpio", nil
	case bytes.HasPrefix(h, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return unknownRatio * size, "xz", nil
	}
	return unknownRatio * size, "unknown", nil
}

// zstdContentSize returns Frame_Content_Size from a zstd frame header
// (RFC 8878 section 3.1.1.1), if the frame records it.
func zstdContentSize(h []byte) (uint64, bool) {
	if len(h) < 5 {
		return 0, false
	}
	fhd := h[4]
	single := fhd&0x20 != 0
	off := 5
	if !single {
		off++ // Window_Descriptor
	}
	off += []int{0, 1, 2, 4}[fhd&3] // Dictionary_ID
	size := []int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		size = 1
	}
	if size == 0 || off+size > len(h) {
		return 0, false
	}
	b := h[off : off+size]
	le := binary.LittleEndian
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(le.Uint16(b)) + 256, true
	case 4:
		return uint64(le.Uint32(b)), true
	}
	return le.Uint64(b), true
}

// kernelVersionOff is the setup header's kernel_version: the offset, less
// 0x200, of the kernel's version string ("6.1.0-57-amd64 (…) #1 SMP …").
const kernelVersionOff = 0x20e

// KernelRelease reads the release (the first word of the version string,
// what uname -r prints) from the setup header of an x86 bzImage.
func KernelRelease(bzImage io.ReaderAt) (string, error) {
	if _, err := KernelInitSize(bzImage); err != nil {
		return "", err
	}
	var p [2]byte
	if _, err := bzImage.ReadAt(p[:], kernelVersionOff); err != nil {
		return "", fmt.Errorf("%w: reading kernel_version: %v", ErrNotBzImage, err)
	}
	off := int64(binary.LittleEndian.Uint16(p[:])) + 0x200
	var s [256]byte
	n, err := bzImage.ReadAt(s[:], off)
	if n == 0 {
		return "", fmt.Errorf("%w: no version string at %#x: %v", ErrNotBzImage, off, err)
	}
	rel, _, _ := strings.Cut(string(s[:n]), " ")
	rel, _, _ = strings.Cut(rel, "\x00")
	if rel == "" {
		return "", fmt.Errorf("%w: empty version string at %#x", ErrNotBzImage, off)
	}
	return rel, nil
}
