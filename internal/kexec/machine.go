// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package kexec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Machine describes the running machine, the one a crash would dump, for
// the size check: its RAM and RAM ranges from ProcRoot/iomem (the top-level
// "System RAM" lines, the PT_LOADs of its /proc/vmcore to be; without root
// the addresses read as 0, and the RAM is ProcRoot/meminfo's MemTotal
// instead), and its possible CPUs from SysRoot/devices/system/cpu/possible.
func (l *Loader) Machine() (Machine, error) {
	var m Machine
	iomem := filepath.Join(l.procRoot(), "iomem")
	b, err := os.ReadFile(iomem)
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") {
			continue
		}
		span, name, ok := strings.Cut(line, " : ")
		if !ok || strings.TrimSpace(name) != "System RAM" {
			continue
		}
		m.RAMRanges++
		lo, hi, _ := strings.Cut(span, "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		z, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || z < a {
			return m, &os.PathError{Op: "parse", Path: iomem, Err: fmt.Errorf("bad range %q", span)}
		}
		if z > 0 {
			m.RAM += int64(z - a + 1)
		}
	}
	if m.RAM == 0 {
		meminfo := filepath.Join(l.procRoot(), "meminfo")
		b, err := os.ReadFile(meminfo)
		if err != nil {
			return m, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return m, &os.PathError{Op: "parse", Path: meminfo, Err: err}
				}
				m.RAM = kb << 10
			}
		}
	}
	possible := filepath.Join(l.sysRoot(), "devices/system/cpu/possible")
	s, err := readTrim(possible)
	if err != nil {
		return m, err
	}
	if m.CPUs, err = countCPUs(s); err != nil {
		return m, &os.PathError{Op: "parse", Path: possible, Err: err}
	}
	return m, nil
}

// countCPUs counts the CPUs of a cpulist ("0-3,8,10-11").
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bad cpu list %q", list)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil || z < a {
				return 0, fmt.Errorf("bad cpu list %q", list)
			}
		}
		n += z - a + 1
	}
	return n, nil
}

// BootAPICID is the initial APIC ID of CPU 0, the CPU the running kernel
// booted on, from /proc/cpuinfo (x86: "initial apicid").
func (l *Loader) BootAPICID() (string, error) {
	path := filepath.Join(l.procRoot(), "cpuinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	cpu0 := false
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "processor":
			cpu0 = v == "0"
		case cpu0 && k == "initial apicid":
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return "", fmt.Errorf("%s: processor 0: bad initial apicid %q", path, v)
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no initial apicid for processor 0", path)
}
