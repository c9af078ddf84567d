// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package capture

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/layout"
)

// moduleInitCompressedFile is MODULE_INIT_COMPRESSED_FILE: the kernel
// decompresses a .ko.xz/.ko.zst/.ko.gz itself.
const moduleInitCompressedFile = 4

// LoadModule loads a kernel module file with finit_module. It does not use
// u-root's pkg/kmodule, which reads the file into the Go heap and calls
// init_module: that ran out of memory at crashkernel=88M (DESIGN.md). A module
// that is already loaded is not an error.
func LoadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(path, ext) {
			flags |= moduleInitCompressedFile
		}
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && err != unix.EEXIST {
		return fmt.Errorf("finit_module(%s): %w", path, err)
	}
	return nil
}

// Main runs the capture as the capture kernel's init and takes the final
// action. As PID 1 it never returns. Run by hand (not PID 1) it only reports
// what it would do and returns an exit status.
func Main(version string, args []string) int {
	// Unknown kernel command-line words reach init as arguments: ignore them.
	_ = args
	kmsg, err := os.OpenFile("/"+layout.Kmsg, os.O_WRONLY, 0)
	if err != nil {
		kmsg = nil
	}
	env := Env{
		Root:       "/",
		Console:    os.Stdout,
		Now:        time.Now,
		Mount:      unix.Mount,
		Unmount:    unix.Unmount,
		LoadModule: LoadModule,
		LimitMemory: func(n int64) {
			debug.SetMemoryLimit(n)
		},
		Version: version,
	}
	productionNetwork(&env)
	if kmsg != nil {
		env.Kmsg = kmsg
	}
	o := Run(env)
	if os.Getpid() != 1 {
		fmt.Printf("ukdump: not PID 1: not taking the action %q\n", o.Action)
		if o.Result == ResultFailed {
			return 1
		}
		return 0
	}
	act(o.Action)
	return 0 // not reached
}

// act takes the final action and never returns. If the action fails it falls
// back to reboot; if that fails too it waits for the kernel's panic= timer
// (PID 1 must not exit).
func act(action string) {
	unix.Sync()
	cmd := map[string]int{
		config.ActionReboot:   unix.LINUX_REBOOT_CMD_RESTART,
		config.ActionPoweroff: unix.LINUX_REBOOT_CMD_POWER_OFF,
		config.ActionHalt:     unix.LINUX_REBOOT_CMD_HALT,
	}
	if action == config.ActionShell {
		fmt.Println("ukdump: starting a shell; exit it to reboot")
		sh := exec.Command("/" + layout.Shell)
		sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := sh.Run(); err != nil {
			fmt.Printf("ukdump: shell: %v\n", err)
		}
		unix.Sync()
		action = config.ActionReboot
	}
	c, ok := cmd[action]
	if !ok {
		c = unix.LINUX_REBOOT_CMD_RESTART
	}
	if err := unix.Reboot(c); err != nil {
		fmt.Printf("ukdump: %s: %v; rebooting\n", action, err)
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Printf("ukdump: reboot: %v\n", err)
	}
	for {
		fmt.Println("ukdump: could not reboot; waiting (the kernel's panic= timer or a watchdog ends this)")
		time.Sleep(time.Minute)
	}
}
