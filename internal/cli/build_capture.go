//go:build ukdump_capture

package cli

import "errors"

// The capture busybox is built with the ukdump_capture tag: building images
// there is of no use, and leaving the image builder (and its xz and zstd
// encoders) out keeps the capture kernel's memory for the dump.
func (c Context) build(args []string) error {
	return errors.New("build: not available in the capture environment's ukdump; run it on the host")
}
