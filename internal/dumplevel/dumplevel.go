// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package dumplevel owns makedumpfile's dump level (-d N): the page classes a
// dump leaves out, their bits and their names. The config, the collector and
// the mem_map classifier all use these; none defines its own.
package dumplevel

import "fmt"

// The bits of a dump level: the page classes left out.
const (
	Zero         = 1 << 0 // zero pages: decided while writing, from the data
	Cache        = 1 << 1 // page cache without private data
	CachePrivate = 1 << 2 // page cache including private data
	User         = 1 << 3 // anonymous and hugetlbfs pages
	Free         = 1 << 4 // free pages of the buddy allocator

	// Max is every class: makedumpfile -d 31.
	Max = Zero | Cache | CachePrivate | User | Free
	// Default is what ukdump leaves out unless told otherwise.
	Default = Max
)

// Names are the config's names of the classes ("none" is level 0).
var Names = map[string]int{"none": 0, "zero": Zero, "cache": Cache, "cache-private": CachePrivate, "user": User, "free": Free}

// Check checks that level is one of makedumpfile's (0-31).
func Check(level int) error {
	if level < 0 || level > Max {
		return fmt.Errorf("dump level %d out of range (0-31: zero 1, cache 2, cache-private 4, user 8, free 16)", level)
	}
	return nil
}

// FromNames is the dump level of a list of class names ("none" adds
// nothing: ["none"] alone is a full dump).
func FromNames(names []string) (int, error) {
	level := 0
	for _, n := range names {
		bit, ok := Names[n]
		if !ok {
			return 0, fmt.Errorf("unknown page class %q (want zero, cache, cache-private, user, free, or none for a full dump)", n)
		}
		level |= bit
	}
	return level, nil
}
