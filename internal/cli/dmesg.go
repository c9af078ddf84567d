// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package cli

import (
	"fmt"

	"github.com/ukdump/ukdump/internal/dmesg"
	"github.com/ukdump/ukdump/internal/dump"
)

// dmesg prints the kernel log of a dump, as makedumpfile --dump-dmesg.
func (c Context) dmesg(args []string) error {
	fs := c.flags("dmesg", "DUMP")
	if err := parseN(fs, args, 1, "dmesg needs one DUMP (ELF, kdump-compressed or flattened)"); err != nil {
		return err
	}
	d, err := dump.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("dmesg: %w", err)
	}
	defer d.Close()
	c.warnIncomplete("dmesg", d)
	k, err := d.Kernel()
	if err != nil {
		return fmt.Errorf("dmesg: %w", err)
	}
	log, err := dmesg.Read(k)
	if err != nil {
		if !d.Complete() {
			return fmt.Errorf("dmesg: %s (an INCOMPLETE dump: the log may be in the part that is missing): %w", fs.Arg(0), err)
		}
		return fmt.Errorf("dmesg: %s: %w", fs.Arg(0), err)
	}
	_, err = c.Stdout.Write(log)
	return err
}
