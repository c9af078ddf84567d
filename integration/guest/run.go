// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// chrootEnv is the environment of every command run in a guest tree: none
// of the host's, so nothing of this machine (proxies, locale, PATH) leaks in.
var chrootEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LC_ALL=C.UTF-8",
	"DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true",
}

// ErrMissingTool is returned when a host tool the guest needs is not
// installed; scripts/deps.sh installs them all.
var ErrMissingTool = errors.New("not found: run scripts/deps.sh")

// needTools checks that every named tool is on PATH.
func needTools(tools ...string) error {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s %w", t, ErrMissingTool)
		}
	}
	return nil
}

// runner runs host commands, appending their output to a log file (if any)
// and keeping the tail of it for the error.
type runner struct {
	log *slog.Logger
	out io.Writer // full output of every command; nil discards it
	dir string    // working directory; "" is the current one
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// run runs name with args. A non-nil env replaces the environment.
func (r runner) run(ctx context.Context, env []string, stdin io.Reader, name string, args ...string) error {
	_, err := r.output(ctx, env, stdin, name, args...)
	return err
}

// output runs name with args and returns its standard output.
func (r runner) output(ctx context.Context, env []string, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Dir = r.dir
	cmd.Stdin = stdin
	// Kill the whole process group: apt and dpkg leave children behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	tail := &tailBuffer{max: 4096}
	var stdout bytes.Buffer
	logw := io.Discard
	if r.out != nil {
		logw = r.out
		fmt.Fprintf(logw, "+ %s %s\n", name, strings.Join(args, " "))
	}
	cmd.Stdout = io.MultiWriter(&stdout, tail, logw)
	cmd.Stderr = io.MultiWriter(tail, logw)
	start := time.Now()
	err := cmd.Run()
	r.logger().Debug("ran", "cmd", name, "args", args, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail.b)
	}
	return stdout.Bytes(), nil
}

// chroot runs args in the guest tree dir, in a private mount namespace with
// /proc mounted: the mount vanishes with the namespace, even if the command
// is killed, so the tree never keeps a mount.
func (r runner) chroot(ctx context.Context, dir string, args ...string) error {
	a := append([]string{"--mount", "--propagation", "private", "--mount-proc=" + dir + "/proc", "chroot", dir}, args...)
	return r.run(ctx, chrootEnv, nil, "unshare", a...)
}

func (r runner) logger() *slog.Logger {
	if r.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.log
}

// writeFile writes data to path, creating its parent directories (0755).
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // WriteFile keeps an existing file's mode and applies the umask
}
