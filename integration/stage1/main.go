// Command stage1 is /init of the end-to-end test's "production system": it
// loads the capture kernel with the real `ukdump load` and crashes the kernel
// with sysrq. On any failure it powers off, so a broken load costs seconds.
//
// Synopsis:
//
//	/init   (kernel command line: ukdump.e2e.append="ARGS" is passed to --append)
//
// The initramfs holds /ukdump, /boot/vmlinuz and /capture.img.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("stage1: FAILED: %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}} {
		os.MkdirAll(m[1], 0o755)
		if err := unix.Mount(m[0], m[1], m[2], 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m[1], err)
		}
	}
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := 0; fd < 3; fd++ {
			unix.Dup2(int(c.Fd()), fd)
		}
	}
	cl, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	args := []string{"load", "--kernel", "/boot/vmlinuz", "--initrd", "/capture.img"}
	if _, v, ok := strings.Cut(string(cl), "ukdump.e2e.append="); ok {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, `"`) {
			v, _, _ = strings.Cut(v[1:], `"`)
		} else {
			v, _, _ = strings.Cut(v, " ")
		}
		args = append(args, "--append", v)
	}
	fmt.Printf("stage1: /ukdump %s\n", strings.Join(args, " "))
	cmd := exec.Command("/ukdump", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ukdump load: %w", err)
	}
	fmt.Printf("stage1: loaded in %s; crashing the kernel\n", time.Since(start).Round(time.Millisecond))
	unix.Sync()
	return os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
}
