// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/hostfs"
	"github.com/ukdump/ukdump/internal/layout"
)

// ConfigOpts are the choices for an image built from a config (ukdump
// build's flags) that the config does not make.
type ConfigOpts struct {
	// Busybox is the capture busybox (default: DefaultBusybox).
	Busybox string
	// KernelVersion, ModulesDir, Compression and MTime are Opts'.
	KernelVersion string
	ModulesDir    string
	Compression   Compression
	MTime         int64
	// Modules are extra modules, added with their dependencies.
	Modules []string
	// NICs are network interfaces (HostNICs) whose drivers are added when
	// the config has network targets.
	NICs []NIC
	// Resolve finds the file system that holds a disk target's path, for
	// the targets without a device (default: hostfs.Resolve on this
	// machine).
	Resolve func(path string) (hostfs.FS, error)
	// Storage selects the disk targets' drivers and file systems: HostOnly
	// (the default: detected on this machine), Generic or GenericVirtio.
	Storage Storage
	// Host says where host-only detection looks (default: this machine).
	Host HostOpts
	// Version is ukdump's, recorded in the image's Record.
	Version string
	// MachineID is the file whose machine id goes into the image (default
	// /etc/machine-id; a missing file puts none in).
	MachineID string
	// CABundle is the CA bundle copied into the image for https s3 targets
	// without ca_file (default DefaultCABundle).
	CABundle string
}

// ConfigImage is the image a config needs.
type ConfigImage struct {
	// Opts are Build's.
	Opts Opts
	// Network is set when the config has network targets.
	Network bool
	// Warnings are about the config's network targets (a host key that
	// will not be checked).
	Warnings []string
	// Resolved are the disk targets without a device, as resolved: index
	// in the config's targets and the file system found.
	Resolved []Resolved
	// Storage are the disk targets' modules (in Opts.OptionalModules unless
	// built in) and why each is there.
	Storage []StorageModule
	// Record says what goes into the image; it is in the image too.
	Record Record
}

// ForConfig works out the image cfg needs, whose TOML is data:
//   - the busybox: o.Busybox, else DefaultBusybox for the kinds of targets;
//   - the modules: o.Modules and each target's fstype, and, skipped with a
//     warning if the kernel lacks them, the disk targets' drivers and file
//     systems as o.Storage selects (by default DetectStorage's: a disk
//     target whose device is not on this machine is an error), and with
//     network targets DefaultModules' and o.NICs' drivers;
//   - each network target's identity and known_hosts, checked (the key
//     parses, known_hosts has the host unless insecure_ignore_host_key),
//     as layout.TargetIdentity and layout.TargetKnownHosts (mode 0600);
//   - the config: data, or with SSH files cfg pointing at them in the image.
//
// Errors name the config's field. cfg itself is not changed.
func ForConfig(cfg *config.Config, data []byte, o ConfigOpts) (ConfigImage, error) {
	c := *cfg
	c.Targets = slices.Clone(cfg.Targets)
	needNet := false
	extra := slices.Clone(o.Modules)
	for _, t := range c.Targets {
		needNet = needNet || t.IsNetwork()
		if t.FSType != "" {
			extra = append(extra, t.FSType)
		}
	}
	rec := Record{KernelRelease: o.KernelVersion, Version: o.Version, Config: sha256Hex(data), Files: map[string]string{},
		RuntimeBytes: c.RuntimeBytes(), CPUs: c.Collect.CPUs}
	resolved, err := resolveDevices(&c, o.Resolve)
	if err != nil {
		return ConfigImage{}, err
	}
	for _, r := range resolved {
		rec.Devices = append(rec.Devices, r.String())
	}
	storage, storageWarnings, err := storageModules(&c, resolved, o)
	if err != nil {
		return ConfigImage{}, err
	}
	files, warnings, err := sshFiles(&c)
	if err != nil {
		return ConfigImage{}, err
	}
	s3f, err := s3Files(&c, o.CABundle)
	if err != nil {
		return ConfigImage{}, err
	}
	files = append(files, s3f...)
	warnings = append(warnings, storageWarnings...)
	remarshal := len(files) > 0 || len(resolved) > 0
	if o.MachineID == "" {
		o.MachineID = "/etc/machine-id"
	}
	if id, err := os.ReadFile(o.MachineID); err == nil && len(bytes.TrimSpace(id)) > 0 {
		files = append(files, File{Data: bytes.TrimSpace(id), Dst: layout.MachineIDPath, Mode: 0o644})
	}
	for _, f := range files {
		rec.Files[f.Dst] = sha256Hex(f.Data)
	}
	if remarshal {
		// The image's config points at the keys as they are in the image,
		// and names the devices found here.
		if data, err = c.Marshal(); err != nil {
			return ConfigImage{}, err
		}
	}
	var optional []string
	for _, m := range storage {
		if !m.Builtin && !slices.Contains(optional, m.Name) {
			optional = append(optional, m.Name)
		}
	}
	for _, m := range DefaultModules(false, needNet) {
		if !slices.Contains(optional, m) {
			optional = append(optional, m)
		}
	}
	if needNet {
		for _, n := range o.NICs {
			if !slices.Contains(optional, n.Module) {
				optional = append(optional, n.Module)
			}
		}
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox(needNet)
	}
	bb, err := os.ReadFile(o.Busybox)
	if err != nil {
		return ConfigImage{}, fmt.Errorf("reading busybox: %w (make builds out/bb and out/bb-disk; the package installs them in /usr/lib/ukdump)", err)
	}
	rec.Busybox = sha256Hex(bb)
	recJSON, err := rec.Marshal()
	if err != nil {
		return ConfigImage{}, err
	}
	files = append(files, File{Data: recJSON, Dst: layout.RecordPath, Mode: 0o644})
	return ConfigImage{
		Resolved: resolved,
		Storage:  storage,
		Record:   rec,
		Opts: Opts{
			Files:           files,
			Busybox:         o.Busybox,
			ConfigTOML:      data,
			KernelVersion:   o.KernelVersion,
			ModulesDir:      o.ModulesDir,
			Modules:         extra,
			OptionalModules: optional,
			Compression:     o.Compression,
			MTime:           o.MTime,
		},
		Network:  needNet,
		Warnings: warnings,
	}, nil
}

// DefaultBusybox finds the capture busybox beside this executable (make puts
// out/bb and out/bb-disk beside out/ukdump), else where make install puts
// them. Without network targets the disk-only bb-disk is preferred: 1.8 MB
// less for the capture kernel to unpack.
func DefaultBusybox(network bool) string {
	names := []string{"bb"}
	if !network {
		names = []string{"bb-disk", "bb"}
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, "/usr/lib/ukdump", "/usr/local/lib/ukdump") // the package's, make install's
	for _, d := range dirs {
		for _, n := range names {
			if fi, err := os.Stat(filepath.Join(d, n)); err == nil && fi.Mode().IsRegular() {
				return filepath.Join(d, n)
			}
		}
	}
	return "/usr/local/lib/ukdump/bb"
}

// NIC is a network interface and the module of its driver.
type NIC struct{ Interface, Module string }

// HostNICs lists the driver modules of the network interfaces in
// sysRoot/class/net, by interface name: the base name of each
// device/driver/module link ('-' spelt '_'). Interfaces without a device
// (lo, bridges, tunnels and other virtual ones) and drivers built into the
// kernel (no module link) are skipped.
func HostNICs(sysRoot string) ([]NIC, error) {
	dir := filepath.Join(sysRoot, "class", "net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var nics []NIC
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "device")); err != nil {
			continue // virtual
		}
		link, err := os.Readlink(filepath.Join(dir, e.Name(), "device", "driver", "module"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // built in, or no driver bound
		}
		if err != nil {
			return nil, fmt.Errorf("driver module of %s: %w", e.Name(), err)
		}
		nics = append(nics, NIC{Interface: e.Name(), Module: strings.ReplaceAll(filepath.Base(link), "-", "_")})
	}
	return nics, nil
}
