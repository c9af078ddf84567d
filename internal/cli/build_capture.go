// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build ukdump_capture

package cli

import (
	"errors"
	"io"

	"github.com/ukdump/ukdump/internal/kexec"
)

// The capture busybox is built with the ukdump_capture tag: building images
// there is of no use, and leaving the image builder (and its xz and zstd
// encoders) out keeps the capture kernel's memory for the dump.
func (c Context) build(args []string) error {
	return errors.New("build: not available in the capture environment's ukdump; run it on the host")
}

// prepareImage: the capture environment has no images of its own to pick or
// check; load there needs --initrd.
func (c Context) prepareImage(l *kexec.Loader, o *kexec.LoadOpts, noRebuild bool) error {
	if o.Initrd == "" {
		return errors.New("load: pass --initrd IMAGE (the capture environment's ukdump builds no images)")
	}
	return nil
}

// report: the capture environment has no dumps of its own to report.
func (c Context) report(io.Writer) {}

func (c Context) test([]string) error {
	return errors.New("test: not available in the capture environment's ukdump; run it on the host")
}
