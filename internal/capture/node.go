// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture

import (
	"io"
	"regexp"

	"github.com/ukdump/ukdump/internal/vmcore"
)

// newUtsnameLen is __NEW_UTS_LEN + 1: each field of struct new_utsname.
const newUtsnameLen = 65

var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// nodeName reads the crashed kernel's host name: init_uts_ns.name.nodename,
// found through VMCOREINFO's SYMBOL(init_uts_ns) and OFFSET(uts_namespace.name)
// in the kernel-image PT_LOAD (where virtual addresses map to the file
// directly). It returns "" when anything is missing or not a plausible name.
func nodeName(r io.ReaderAt, c *vmcore.Core) string {
	if c.Info == nil {
		return ""
	}
	sym, ok := c.Info.Symbol("init_uts_ns")
	if !ok {
		return ""
	}
	off, _ := c.Info.Offset("uts_namespace.name")
	va := sym + uint64(off) + newUtsnameLen // .nodename follows .sysname
	for _, l := range c.Loads {
		if va < l.Vaddr || va+newUtsnameLen > l.Vaddr+l.Filesz {
			continue
		}
		b := make([]byte, newUtsnameLen)
		if n, _ := r.ReadAt(b, int64(l.Offset+(va-l.Vaddr))); n < len(b) {
			return ""
		}
		for i, ch := range b {
			if ch == 0 {
				b = b[:i]
				break
			}
		}
		if s := string(b); hostRE.MatchString(s) {
			return s
		}
		return ""
	}
	return ""
}
