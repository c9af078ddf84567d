// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package crashvm

import (
	"errors"
	"os"
	"slices"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// A stage1File is a host file copied into stage 1's initramfs.
type stage1File struct {
	name string // path in the archive
	src  string // host file
	perm uint64
}

// writeStage1 writes stage 1's initramfs to out: a newc cpio with /init (the
// integration/stage1 program), the directories it mounts on, and files.
func writeStage1(out string, files []stage1File) error {
	recs := []cpio.Record{
		cpio.Directory("boot", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
	}
	for _, f := range files {
		in, err := os.Open(f.src)
		if err != nil {
			return err
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return err
		}
		recs = append(recs, cpio.Record{ReaderAt: in, Info: cpio.Info{
			Name: f.name, Mode: cpio.S_IFREG | f.perm, FileSize: uint64(st.Size()),
		}})
	}
	// Sorted, parents first; the kernel creates no missing directories.
	slices.SortFunc(recs, func(a, b cpio.Record) int { return strings.Compare(a.Name, b.Name) })
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	rw := cpio.Newc.Writer(w)
	for i, r := range recs {
		r.Ino, r.NLink = uint64(i+1), 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := rw.WriteRecord(r); err != nil {
			w.Close()
			return err
		}
	}
	return errors.Join(cpio.WriteTrailer(rw), w.Close())
}
