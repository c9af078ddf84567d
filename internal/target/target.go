// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package target is where dumps are saved: the Target interface, the local
// disk target (found by UUID=, LABEL=, PARTUUID= or path, and mounted), and
// the dump-directory conventions shared by every target.
package target

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Target is a place dumps can be saved.
type Target interface {
	// Open makes the target ready (finds and mounts a disk, or connects) and
	// returns the directory under which dump directories are made.
	Open(ctx context.Context) (Dir, error)
	String() string
}

// Dir is a directory on a target. Names are relative to it; a dump lives in
// one subdirectory.
type Dir interface {
	// Mkdir makes a directory with mode 0700; it fails if it exists.
	Mkdir(name string) error
	// Create creates (or truncates) a file with mode 0600.
	Create(name string) (File, error)
	// Rename renames oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// SyncDir makes a directory's entries durable (fsync of the directory).
	SyncDir(name string) error
	// List returns the names of the subdirectories of the top directory.
	List() ([]string, error)
	// RemoveAll removes a subdirectory and everything in it.
	RemoveAll(name string) error
	// Free is the space available to us, in bytes.
	Free() (int64, error)
	// Close releases the target (unmounts a disk).
	Close() error
	String() string
}

// File is a file being written on a target.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// Dropper is a Dir that keeps nothing of a dump whose copy failed (an S3
// multipart upload is aborted, not kept as vmcore.incomplete).
// DropsIncomplete says so, for the manifest and the log.
type Dropper interface {
	DropsIncomplete() string
}

// Sizer is a File that must know its size before its data: the legacy scp
// protocol announces it first. A writer that knows the size (collect does
// for the ELF formats) calls SetSize before it writes; a file whose size
// it never learns is held up to a limit (see scpDir). Other Files need not
// implement it.
type Sizer interface {
	SetSize(size int64) error
}

// dumpDirRE matches the names of dump directories: <host>-<YYYYmmddTHHMMSSZ>[.N].
var dumpDirRE = regexp.MustCompile(`^.+-(\d{8}T\d{6}Z)(\.\d+)?$`)

// ParseDumpDirName splits the name of a dump directory into its host and
// crash time; ok is false for any other name.
func ParseDumpDirName(name string) (host string, crash time.Time, ok bool) {
	m := dumpDirRE.FindStringSubmatch(name)
	if m == nil {
		return "", time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", m[1])
	if err != nil {
		return "", time.Time{}, false
	}
	base := strings.TrimSuffix(name, m[2])
	return strings.TrimSuffix(base, "-"+m[1]), t, true
}

// DumpDirName is the name of a dump directory: <host>-<crash time UTC>.
func DumpDirName(host string, crash time.Time) string {
	return host + "-" + crash.UTC().Format("20060102T150405Z")
}

// Retention says which dump directories on a target may be removed: only
// this host's (a target may be shared by a fleet), never the new dump's.
type Retention struct {
	// Host names this machine's dump directories, <Host>-<stamp>[.N].
	Host string
	// Keep is how many of the host's dumps remain, the new one included;
	// 0 or less keeps all.
	Keep int
	// Exclude is the new dump's directory, which is never removed.
	Exclude string
}

// dumpDir is one dump directory of the host's, for sorting.
type dumpDir struct {
	name, stamp string
	seq         int // the .N suffix of a second dump at the same second; 0 for none
}

// hostDumps lists r.Host's dump directories, oldest first (by crash time,
// then by suffix as a number: .2 before .10), without r.Exclude.
func (r Retention) hostDumps(d Dir) ([]dumpDir, error) {
	names, err := d.List()
	if err != nil {
		return nil, fmt.Errorf("retention: list %s: %w", d, err)
	}
	var dumps []dumpDir
	for _, n := range names {
		host, _, ok := ParseDumpDirName(n)
		m := dumpDirRE.FindStringSubmatch(n)
		if !ok || m == nil || host != r.Host || n == r.Exclude {
			continue
		}
		seq, _ := strconv.Atoi(strings.TrimPrefix(m[2], ".")) // "" (no suffix) is 0
		dumps = append(dumps, dumpDir{n, m[1], seq})
	}
	sort.Slice(dumps, func(i, j int) bool {
		if dumps[i].stamp != dumps[j].stamp {
			return dumps[i].stamp < dumps[j].stamp
		}
		if dumps[i].seq != dumps[j].seq {
			return dumps[i].seq < dumps[j].seq
		}
		return dumps[i].name < dumps[j].name
	})
	return dumps, nil
}

// Prune removes the host's oldest dump directories so that at most r.Keep
// of them remain, the new one (r.Exclude) included: it runs after the new
// dump is complete, so a failed copy never costs an old dump. Other hosts'
// directories, and anything that is not a dump directory, are left alone.
// It returns the names removed.
func Prune(d Dir, r Retention) ([]string, error) {
	if r.Keep <= 0 {
		return nil, nil
	}
	dumps, err := r.hostDumps(d)
	if err != nil {
		return nil, err
	}
	keepOld := r.Keep
	if r.Exclude != "" {
		keepOld-- // the new dump counts
	}
	var removed []string
	for len(dumps) > keepOld {
		if err := d.RemoveAll(dumps[0].name); err != nil {
			return removed, fmt.Errorf("retention: remove %s on %s: %w", dumps[0].name, d, err)
		}
		removed = append(removed, dumps[0].name)
		dumps = dumps[1:]
	}
	return removed, nil
}

// MakeRoom removes the host's oldest dump directories, one at a time, until
// the target has need bytes free or none of the host's are left. It is for
// min_free before a dump: the only time a dump goes before the new one is
// complete. It returns the names removed and the space now free.
func MakeRoom(d Dir, r Retention, need int64) (removed []string, free int64, err error) {
	if free, err = d.Free(); err != nil || free >= need {
		return nil, free, err
	}
	dumps, err := r.hostDumps(d)
	if err != nil {
		return nil, free, err
	}
	for _, dd := range dumps {
		if err := d.RemoveAll(dd.name); err != nil {
			return removed, free, fmt.Errorf("retention: remove %s on %s: %w", dd.name, d, err)
		}
		removed = append(removed, dd.name)
		if free, err = d.Free(); err != nil || free >= need {
			return removed, free, err
		}
	}
	return removed, free, nil
}
