// Command ukdump builds, loads and reports the ukdump capture environment.
//
// Synopsis:
//
//	ukdump build -c CONFIG -o IMAGE [--busybox PATH] [--kver VERSION] [--modules-dir DIR] [--module NAME]... [--compress gzip|zstd|xz|none]
//	ukdump load --initrd IMAGE [--kernel PATH] [--append ARGS] [--force]
//	ukdump unload
//	ukdump status
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ukdump/ukdump/internal/cli"
)

func main() {
	err := cli.Context{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr}.Execute()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "ukdump: %v\n", err)
		os.Exit(1)
	}
}
