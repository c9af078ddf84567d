// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/ukdump/ukdump/internal/manifest"
)

// A Check looks at one finished boot and says what is wrong with it. Checks
// run in the order a scenario lists them; one may leave a file for the next
// (Reassemble).
type Check func(*Result) error

// Check runs the checks and returns every problem found, none if the boot
// passed. A boot QEMU had to be killed for is a problem in itself.
func (r *Result) Check(checks []Check) []error {
	var errs []error
	if r.TimedOut {
		errs = append(errs, fmt.Errorf("QEMU did not exit within %v: killed (%s)", r.timeout(), r.SerialLog()))
	}
	for _, c := range checks {
		if err := c(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Saved are the checks of a dump saved whole: the result=saved line, the four
// files, vmcore's sha256 against manifest.json, the checks of the format (on
// core, the dump as a reader takes it: vmcore, or what Reassemble made of it),
// then the crashed kernel's log in vmcore-dmesg.txt and, by makedumpfile, in
// core, and crash naming the crashed kernel.
func Saved(core string, format ...Check) []Check {
	return slices.Concat([]Check{
		ConsoleHas(`ukdump: result=saved`),
		Files("vmcore", "vmcore-dmesg.txt", "manifest.json", "ukdump.log"),
		SHA256("vmcore"),
	}, format, []Check{
		FileHas("vmcore-dmesg.txt", "sysrq triggered crash"),
		MakedumpfileDmesg(core, "sysrq triggered crash"),
		CrashOSRelease(core),
	})
}

// Partial are the checks of a capture that could not finish (the fault
// scenarios): vmcore.incomplete and no vmcore, marked incomplete in its
// format's way, still opened by crash; manifest.json and ukdump.log, written
// before the dump and padded to keep their room, say that it stopped and hold
// the capture's log; manifest.json's error matches why.
func Partial(format, why string) []Check {
	return []Check{
		Files("vmcore.incomplete", "vmcore-dmesg.txt", "manifest.json", "ukdump.log"),
		Absent("vmcore"),
		MarkedIncomplete("vmcore.incomplete", format),
		CrashOSRelease("vmcore.incomplete"),
		ManifestIncomplete("vmcore.incomplete", why),
		FileHas("ukdump.log", "saving to "),
	}
}

// ConsoleHas checks that a console line matches re.
func ConsoleHas(re string) Check {
	rx := regexp.MustCompile(re)
	return func(r *Result) error {
		if _, ok := r.Find(rx); !ok {
			return fmt.Errorf("no console line matches %q (%s)", re, r.SerialLog())
		}
		return nil
	}
}

// ConsoleLacks checks that no console line matches re.
func ConsoleLacks(re string) Check {
	rx := regexp.MustCompile(re)
	return func(r *Result) error {
		if l, ok := r.Find(rx); ok {
			return fmt.Errorf("the console has %q, want no line matching %q (%s)", l.Text, re, r.SerialLog())
		}
		return nil
	}
}

// Files checks that the dump directory exists and holds each file, not empty.
func Files(names ...string) Check {
	return func(r *Result) error {
		if r.DumpName == "" {
			return fmt.Errorf("no dump directory in %s", r.Where)
		}
		var errs []error
		for _, n := range names {
			if st, err := os.Stat(r.File(n)); err != nil || st.Size() == 0 || !slices.Contains(r.Saved, n) {
				errs = append(errs, fmt.Errorf("%s missing or empty in %s/%s", n, r.Where, r.DumpName))
			}
		}
		return errors.Join(errs...)
	}
}

// Absent checks that the dump directory does not hold name.
func Absent(name string) Check {
	return func(r *Result) error {
		if slices.Contains(r.Saved, name) {
			return fmt.Errorf("%s/%s/%s exists: the unfinished dump was renamed", r.Where, r.DumpName, name)
		}
		return nil
	}
}

// FileHas checks that a file of the dump directory contains s.
func FileHas(name, s string) Check {
	return func(r *Result) error {
		b, err := os.ReadFile(r.File(name))
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(s)) {
			return fmt.Errorf("%s does not have %q", name, s)
		}
		return nil
	}
}

func readManifest(r *Result) (*manifest.Manifest, error) {
	m, err := manifest.Read(r.File(manifest.Name))
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// SHA256 checks that manifest.json's sha256 is that of name, as saved. A
// dump on a local disk has it pending (the capture leaves it to the next
// boot): the check completes it as the next boot's ukdump status does
// (manifest.FillSHA256) and compares that. A dump sent to a server must have
// it from the capture.
func SHA256(name string) Check {
	return func(r *Result) error {
		m, err := readManifest(r)
		if err != nil {
			return err
		}
		if m.SHA256Pending {
			if strings.Contains(m.Target, "://") {
				return fmt.Errorf("manifest.json: sha256 pending for a dump sent to %s: want it hashed in the capture", m.Target)
			}
			filled, done, err := manifest.FillSHA256(r.Dump)
			if err != nil || !done {
				return fmt.Errorf("the next boot's sha256 of %s (manifest.FillSHA256): done %v, %v", name, done, err)
			}
			m.SHA256 = filled.SHA256
		}
		f, err := os.Open(r.File(name))
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
			return fmt.Errorf("sha256 mismatch: manifest %q, %s %s", m.SHA256, name, got)
		}
		return nil
	}
}

// ManifestIncomplete checks that manifest.json says the dump is not
// complete, names file, and that its error matches the regexp why.
func ManifestIncomplete(file, why string) Check {
	rx := regexp.MustCompile(why)
	return func(r *Result) error {
		m, err := readManifest(r)
		if err != nil {
			return err
		}
		var errs []error
		if m.Complete {
			errs = append(errs, errors.New(`manifest.json says "complete": true, want false`))
		}
		if m.File != file {
			errs = append(errs, fmt.Errorf("manifest.json names %q, want %s", m.File, file))
		}
		if !rx.MatchString(m.Error) {
			errs = append(errs, fmt.Errorf("manifest.json's error is %q, want it to match %q", m.Error, why))
		}
		return errors.Join(errs...)
	}
}

// tool runs a program, its output in the dump directory's file out (stdout
// and stderr), and returns the output. Its exit status is for the caller.
func tool(r *Result, out, name string, args ...string) ([]byte, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	if werr := os.WriteFile(r.File(out), b, 0o644); werr != nil {
		return b, werr
	}
	return b, err
}

// ELFCore checks with readelf that name is an ELF core with a VMCOREINFO
// note.
func ELFCore(name string) Check {
	return func(r *Result) error {
		out, _ := tool(r, "readelf.txt", "readelf", "-h", "-n", r.File(name))
		var errs []error
		if !bytes.Contains(out, []byte("CORE (Core file)")) {
			errs = append(errs, fmt.Errorf("%s is not an ELF core (%s)", name, r.File("readelf.txt")))
		}
		if !bytes.Contains(out, []byte("VMCOREINFO")) {
			errs = append(errs, fmt.Errorf("%s has no VMCOREINFO note (%s)", name, r.File("readelf.txt")))
		}
		return errors.Join(errs...)
	}
}

// info is what the checks read of `ukdump info --json`.
type info struct {
	Format   string `json:"format"`
	Codec    string `json:"codec"`
	Complete bool   `json:"complete"`
}

// ukdumpInfo runs `ukdump info --json` on name, its output in info.json and
// info.err. Its exit status is not looked at: info describes incomplete
// dumps too.
func ukdumpInfo(r *Result, name string) (*info, error) {
	if i := r.infos[name]; i != nil {
		return i, nil
	}
	cmd := exec.Command(r.ukdump(), "info", "--json", r.File(name))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	if err := errors.Join(os.WriteFile(r.File("info.json"), out, 0o644), os.WriteFile(r.File("info.err"), stderr.Bytes(), 0o644)); err != nil {
		return nil, err
	}
	var i info
	if err := json.Unmarshal(out, &i); err != nil {
		return nil, fmt.Errorf("ukdump info --json %s: %w (%s)", name, err, r.File("info.err"))
	}
	if r.infos == nil {
		r.infos = map[string]*info{}
	}
	r.infos[name] = &i
	return &i, nil
}

// KdumpFile checks that `ukdump info` sees name as a complete
// kdump-compressed file written with codec.
func KdumpFile(name, codec string) Check {
	return func(r *Result) error {
		i, err := ukdumpInfo(r, name)
		if err != nil {
			return err
		}
		var errs []error
		if i.Format != "kdump" {
			errs = append(errs, fmt.Errorf("ukdump info sees a %q file, want kdump (%s)", i.Format, r.File("info.json")))
		}
		if !i.Complete {
			errs = append(errs, fmt.Errorf("ukdump info: %s is not complete (%s)", name, r.File("info.json")))
		}
		if i.Codec != codec {
			errs = append(errs, fmt.Errorf("ukdump info: codec %q, want %s (%s)", i.Codec, codec, r.File("info.json")))
		}
		return errors.Join(errs...)
	}
}

// kdumpStatusOffset is disk_dump_header.status in a kdump-compressed file,
// and DUMP_DH_COMPRESSED_INCOMPLETE its bit for a dump whose writing stopped
// (makedumpfile's diskdump_mod.h).
const (
	kdumpStatusOffset          = 424
	dumpDHCompressedIncomplete = 0x8
)

// MarkedIncomplete checks that name says it is incomplete: to `ukdump info`,
// and in its header, read without ukdump: a kdump file's header status has
// DUMP_DH_COMPRESSED_INCOMPLETE, an ELF core's e_flags is 0x1 (readelf -h).
func MarkedIncomplete(name, format string) Check {
	return func(r *Result) error {
		var errs []error
		if i, err := ukdumpInfo(r, name); err != nil {
			errs = append(errs, err)
		} else {
			if i.Format != format {
				errs = append(errs, fmt.Errorf("ukdump info sees a %q file, want %s (%s)", i.Format, format, r.File("info.json")))
			}
			if i.Complete {
				errs = append(errs, fmt.Errorf("ukdump info does not say %s is incomplete (%s)", name, r.File("info.json")))
			}
		}
		switch format {
		case "kdump":
			st, err := readUint32(r.File(name), kdumpStatusOffset)
			if err != nil {
				errs = append(errs, err)
			} else if st&dumpDHCompressedIncomplete == 0 {
				errs = append(errs, fmt.Errorf("the kdump header's status is %#x, without DUMP_DH_COMPRESSED_INCOMPLETE (%#x)", st, dumpDHCompressedIncomplete))
			}
		case "elf":
			out, _ := tool(r, "readelf.txt", "readelf", "-h", r.File(name))
			if !regexp.MustCompile(`(?m)Flags: *0x1$`).Match(out) {
				errs = append(errs, fmt.Errorf("the ELF header's e_flags is not 0x1 (incomplete) (%s)", r.File("readelf.txt")))
			}
		default:
			errs = append(errs, fmt.Errorf("MarkedIncomplete: format %q, want kdump or elf", format))
		}
		return errors.Join(errs...)
	}
}

func readUint32(file string, off int64) (uint32, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return 0, fmt.Errorf("%s: reading 4 bytes at %d: %w", file, off, err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// Reassemble checks that `ukdump reassemble` turns flat, a flattened stream
// (what the capture sends to a stream target), into out, for the checks after.
func Reassemble(flat, out string) Check {
	return func(r *Result) error {
		os.Remove(r.File(out))
		if b, err := tool(r, "reassemble.out", r.ukdump(), "reassemble", r.File(flat), r.File(out)); err != nil {
			return fmt.Errorf("ukdump reassemble failed on the flattened dump: %w: %s", err, bytes.TrimSpace(b))
		}
		return nil
	}
}

// MakedumpfileDmesg checks that makedumpfile --dump-dmesg finds s in the
// crashed kernel's log in name. Debian 12's makedumpfile reads zlib and LZO
// pages but not zstd or snappy: for a dump in one of those, `ukdump dmesg`
// reads the log out of the saved file's pages instead (the capture's
// vmcore-dmesg.txt came from /proc/vmcore, so this still checks the pages
// as written).
func MakedumpfileDmesg(name, s string) Check {
	return func(r *Result) error {
		if i, err := ukdumpInfo(r, name); err == nil && (i.Codec == "zstd" || i.Codec == "snappy") {
			b, _ := tool(r, "dmesg.txt", r.ukdump(), "dmesg", r.File(name))
			if !bytes.Contains(b, []byte(s)) {
				return fmt.Errorf("ukdump dmesg does not find %q in %s (%s codec, which makedumpfile 1.7.2 cannot read; %s)", s, name, i.Codec, r.File("dmesg.txt"))
			}
			return nil
		}
		out := r.File("dmesg.txt")
		os.Remove(out) // makedumpfile refuses to overwrite
		tool(r, "makedumpfile.out", "makedumpfile", "--dump-dmesg", r.File(name), out)
		b, err := os.ReadFile(out)
		if err != nil || !bytes.Contains(b, []byte(s)) {
			return fmt.Errorf("makedumpfile --dump-dmesg does not find %q in %s (%s)", s, name, r.File("makedumpfile.out"))
		}
		return nil
	}
}

// CrashOSRelease checks that crash --osrelease names the crashed kernel's
// release (it needs no vmlinux).
func CrashOSRelease(name string) Check {
	return func(r *Result) error {
		out, _ := tool(r, "crash.out", "crash", "--osrelease", r.File(name))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if got := lines[len(lines)-1]; got != r.Release {
			return fmt.Errorf("crash --osrelease %s printed %q, want %s", name, got, r.Release)
		}
		return nil
	}
}

// JournalReplayed checks that e2fsck replayed the disk's journal.
func JournalReplayed() Check {
	return func(r *Result) error {
		switch {
		case r.Fsck == nil:
			return errors.New("the disk's journal was not replayed (the scenario kills no capture)")
		case r.Fsck.Status > 1:
			return fmt.Errorf("e2fsck -E journal_only failed with status %d (%s)", r.Fsck.Status, r.Fsck.Log)
		}
		return nil
	}
}

// Summary is the one line a passing boot is reported with: how long from the
// crash to the saved dump and how fast, or what a capture that could not
// finish left.
func (r *Result) Summary() string {
	m, _ := readManifest(r)
	if m == nil {
		m = &manifest.Manifest{}
	}
	if st, err := os.Stat(r.File("vmcore.incomplete")); err == nil && !slices.Contains(r.Saved, "vmcore") {
		return fmt.Sprintf("vmcore.incomplete %d bytes, marked incomplete, read by crash (%s)", st.Size(), r.Config.Format)
	}
	secs := "?"
	if d, ok := r.PanicToSaved(); ok {
		secs = fmt.Sprintf("%.1f", d.Seconds())
	}
	var size int64
	if st, err := os.Stat(r.File("vmcore")); err == nil {
		size = st.Size()
	}
	return fmt.Sprintf("panic → dump saved in %ss; %.1f MB/s of memory; vmcore %d bytes (%s, %s)",
		secs, m.MBPerSecond, size, r.Config.Format, r.Target)
}
