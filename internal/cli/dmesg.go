package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ukdump/ukdump/internal/dmesg"
	"github.com/ukdump/ukdump/internal/dumpmem"
	"github.com/ukdump/ukdump/internal/kdumpfile"
	"github.com/ukdump/ukdump/internal/vmcore"
)

// OpenKernel opens the dump at path (an ELF core, a kdump-compressed file,
// or a flattened one, which is reassembled into a temporary file first) for
// reading the crashed kernel's memory. The caller calls close when done.
func OpenKernel(path string) (k *dumpmem.Kernel, close func() error, err error) {
	if in, err := os.Open(path); err == nil {
		flat := kdumpfile.IsFlattened(in)
		if !flat {
			in.Close()
		} else {
			defer in.Close()
			tmp, err := os.CreateTemp("", "ukdump-reassembled-*")
			if err != nil {
				return nil, nil, fmt.Errorf("%s: reassemble the flattened dump: %w", path, err)
			}
			os.Remove(tmp.Name()) // gone when closed
			if err := kdumpfile.Reassemble(in, tmp); err != nil {
				tmp.Close()
				return nil, nil, fmt.Errorf("%s: reassemble the flattened dump: %w", path, err)
			}
			kf, err := kdumpfile.Open(tmp)
			if err != nil {
				tmp.Close()
				return nil, nil, fmt.Errorf("%s (reassembled): %w", path, err)
			}
			k, err := dumpmem.NewKernel(dumpmem.FromKdump(kf), vmcore.ParseInfo(kf.VMCoreInfo()), nil)
			if err != nil {
				tmp.Close()
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			return k, func() error { kf.Close(); return tmp.Close() }, nil
		}
	}
	f, err := vmcore.OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if string(magic[:]) == "\x7fELF" {
		c, err := vmcore.Open(f, f.Size())
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		k, err := dumpmem.NewKernel(dumpmem.FromELF(f, c), c.Info, c.Loads)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, f.Close, nil
	}
	kf, err := kdumpfile.Open(f)
	if err != nil {
		f.Close()
		if errors.Is(err, kdumpfile.ErrFlattened) {
			return nil, nil, fmt.Errorf("%s: %w (run 'ukdump reassemble %s OUT' and read OUT)", path, err, path)
		}
		return nil, nil, fmt.Errorf("%s: neither an ELF core nor a kdump-compressed file: %w", path, err)
	}
	closeAll := func() error {
		kf.Close()
		return f.Close()
	}
	k, err = dumpmem.NewKernel(dumpmem.FromKdump(kf), vmcore.ParseInfo(kf.VMCoreInfo()), nil)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, closeAll, nil
}

// dmesg prints the kernel log of a dump, as makedumpfile --dump-dmesg.
func (c Context) dmesg(args []string) error {
	fs := c.flags("dmesg", "DUMP")
	if err := parseN(fs, args, 1, "dmesg needs one DUMP (ELF, kdump-compressed or flattened)"); err != nil {
		return err
	}
	k, closeDump, err := OpenKernel(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("dmesg: %w", err)
	}
	defer closeDump()
	log, err := dmesg.Read(k)
	if err != nil {
		return fmt.Errorf("dmesg: %s: %w", fs.Arg(0), err)
	}
	_, err = c.Stdout.Write(log)
	return err
}
