//go:build !linux

package capture

import "fmt"

// Main is the capture kernel's init; the capture runs only on Linux.
func Main(version string, args []string) int {
	fmt.Println("ukdump capture: runs only in a Linux capture kernel")
	return 1
}
