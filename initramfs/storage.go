// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package initramfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ukdump/ukdump/internal/blkid"
	"github.com/ukdump/ukdump/internal/config"
	"github.com/ukdump/ukdump/internal/dm"
)

// Storage selects the disk drivers and file systems of an image with disk
// targets.
type Storage string

// The storage choices of ukdump build.
const (
	// HostOnly, the default, is for the machine that builds the image: the
	// modules that drive each disk target's block device here, found in
	// sysfs (DetectStorage). A disk target whose device is not here is an
	// error.
	HostOnly Storage = ""
	// Generic is for other machines: GenericStorageModules.
	Generic Storage = "all"
	// GenericVirtio is for QEMU/KVM guests with virtio-blk disks and ext4:
	// the disk modules of DefaultModules, which every image had before
	// host-only detection.
	GenericVirtio Storage = "virtio"
)

// GenericStorageModules are the modules of Generic, each skipped with a
// warning when the kernel lacks it:
//   - disks of virtual machines: virtio_blk and virtio_scsi on virtio_pci
//     (KVM, QEMU), xen_blkfront (Xen), hv_storvsc (Hyper-V), vmw_pvscsi and
//     mptspi (VMware's paravirtual and LSI Logic controllers);
//   - disks of servers: nvme; ahci and ata_piix for SATA; sd_mod for every
//     SCSI, SAS and SATA disk; the SAS HBAs and RAID controllers mpt3sas,
//     mpi3mr, megaraid_sas, hpsa, smartpqi, aacraid and mptsas;
//   - dm_mod, which holds LVM's linear and striped targets;
//   - the file systems ext4 (also ext2 and ext3), xfs, btrfs and vfat, with
//     the code pages vfat mounts with (nls_cp437, and nls_ascii, nls_utf8
//     or nls_iso8859_1 as the kernel's default iocharset).
//
// Left out, to be named with --module: Fibre Channel and iSCSI HBAs
// (qla2xxx and lpfc are 2-3 MB each), USB storage, md RAID and other
// device-mapper targets (the capture environment assembles neither).
var GenericStorageModules = []string{
	"virtio_pci", "virtio_blk", "virtio_scsi", "xen_blkfront", "hv_storvsc", "vmw_pvscsi", "mptspi",
	"nvme", "ahci", "ata_piix", "sd_mod",
	"mpt3sas", "mpi3mr", "megaraid_sas", "hpsa", "smartpqi", "aacraid", "mptsas",
	"dm_mod",
	"ext4", "xfs", "btrfs", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1",
}

// vfatCodepages are the modules vfat mounts may need: its default code page
// and the iocharsets kernels default to. The capture kernel has no modprobe
// to load them when mount asks for them.
var vfatCodepages = []string{"nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1"}

// StorageModule is a module chosen for the disk targets, and why.
type StorageModule struct {
	// Name is the module's name, e.g. "nvme".
	Name string
	// Builtin is set when the capture kernel has it built in: nothing goes
	// into the image.
	Builtin bool
	// Reasons say what it drives for which target, e.g. "driver of
	// 0000:00:04.0 (pci), a parent of nvme0n1p3, for target[0]
	// LABEL=crashdump", or name the generic set.
	Reasons []string
}

// HostOpts say where host-only detection looks. The zero value is this
// machine.
type HostOpts struct {
	// SysRoot is where sysfs is mounted. Default /sys.
	SysRoot string
	// DevRoot holds the device nodes, probed for the targets' file
	// systems. Default /dev.
	DevRoot string
	// DMTable returns the target types ("linear", "striped", "crypt", …)
	// of the table of the device-mapper device called name (its dm/name).
	// Default: dm.Control.TableTypes on DevRoot/mapper/control. When it
	// fails, linear and striped (which dm_mod has) are assumed.
	DMTable func(name string) ([]string, error)
}

func (o HostOpts) withDefaults() HostOpts {
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.DMTable == nil {
		o.DMTable = dm.Control{ControlPath: filepath.Join(o.DevRoot, "mapper", "control")}.TableTypes
	}
	return o
}

// HostDisk is a disk target's block device on this machine.
type HostDisk struct {
	// Target names the target in reasons, e.g. "target[0] LABEL=crashdump".
	Target string
	// Device is the block device's kernel name, e.g. "nvme0n1p3".
	Device string
	// FSType is its file system, "" when unknown.
	FSType string
}

// ErrNoHostDevice is wrapped by host-only detection's error for a disk
// target whose device is not on this machine.
var ErrNoHostDevice = errors.New("no such device on this machine")

// hostDisks finds the block device of each disk target of c here: those in
// resolved (targets without a device, resolved by ForConfig) are known;
// the others are probed by blkid.
func hostDisks(c *config.Config, resolved []Resolved, o HostOpts) ([]HostDisk, error) {
	finder := blkid.Finder{SysRoot: o.SysRoot, DevRoot: o.DevRoot}
	var disks []HostDisk
	for i, t := range c.Targets {
		if t.IsNetwork() {
			continue
		}
		hd := HostDisk{Target: fmt.Sprintf("target[%d] %s", i, t.Device), FSType: t.FSType}
		if j := slices.IndexFunc(resolved, func(r Resolved) bool { return r.Target == i }); j >= 0 {
			hd.Device = filepath.Base(resolved[j].FS.Device)
			if hd.FSType == "" {
				hd.FSType = resolved[j].FS.FSType
			}
			disks = append(disks, hd)
			continue
		}
		d, err := finder.Find(t.Device)
		if errors.Is(err, blkid.ErrNotFound) {
			var seen []string
			devs, _ := finder.List() // Find listed them already
			for _, d := range devs {
				seen = append(seen, d.String())
			}
			if len(seen) == 0 {
				seen = []string{"none"}
			}
			return nil, fmt.Errorf("target[%d]: %s: %w (blkid lists: %s); build with --generic to include drivers for other machines",
				i, t.Device, ErrNoHostDevice, strings.Join(seen, ", "))
		}
		if err != nil {
			return nil, fmt.Errorf("target[%d]: %s: %w", i, t.Device, err)
		}
		hd.Device = d.Name
		if hd.FSType == "" {
			hd.FSType = d.FSType
		}
		disks = append(disks, hd)
	}
	return disks, nil
}

// DetectStorage returns the modules of the kernel in modulesDir that the
// capture kernel needs to reach each disk in disks as this machine does,
// and warnings. For each disk it walks sysfs:
//   - from SysRoot/class/block/DEVICE to its directory under
//     SysRoot/devices, and from there (and from its device link) through
//     every parent up to SysRoot/devices;
//   - through each slaves/* entry (device-mapper, md) and multipath/*
//     entry (NVMe multipath) of those directories, recursively, first;
//   - for each directory from the top down: the module of its driver (the
//     driver/module link, else the driver's name, for a driver built into
//     this kernel); if the kernel has none of that name, the modules its
//     modalias (or uevent MODALIAS=) matches in modules.alias;
//   - for a device-mapper device, dm_mod and the modules of its table's
//     target types (HostOpts.DMTable; linear and striped are dm_mod's);
//     for an md array, md_mod and its level's module;
//   - the file system's module (fs-TYPE in modules.alias) and, for vfat,
//     its code pages; their softdeps (crc32c for ext4) come with them.
//
// Modules built into the kernel are returned with Builtin set. The order is
// the load order: parents before children, slaves before what they hold.
func DetectStorage(disks []HostDisk, modulesDir string, o HostOpts) ([]StorageModule, []string, error) {
	idx, err := loadIndex(modulesDir, filepath.Base(modulesDir))
	if err != nil {
		return nil, nil, err
	}
	d := &detector{o: o.withDefaults(), idx: idx, at: map[string]int{}}
	for _, disk := range disks {
		tail := ", for " + disk.Target
		d.drives = false
		if err := d.block(disk.Device, "", tail, 0); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", disk.Target, err)
		}
		if !d.drives {
			d.warn("%s: no driver of %s found in %s: the image gets none for it", disk.Target, disk.Device, d.o.SysRoot)
		}
		d.fs(disk, tail)
	}
	return d.mods, d.warnings, nil
}

type detector struct {
	o        HostOpts
	idx      *index
	mods     []StorageModule
	at       map[string]int // module name → index in mods
	warnings []string
	drives   bool // a module (maybe one already added) was found for the current disk
}

func (d *detector) warn(format string, args ...any) {
	if w := fmt.Sprintf(format, args...); !slices.Contains(d.warnings, w) {
		d.warnings = append(d.warnings, w)
	}
}

// add records module name (or alias) with reason; a name the kernel does
// not know is added all the same, so that Build warns about it.
func (d *detector) add(name, reason string) {
	mod, builtin, ok := d.idx.lookup(name)
	if !ok {
		mod = moduleName(name)
	}
	d.drives = true
	if i, ok := d.at[mod]; ok {
		if !slices.Contains(d.mods[i].Reasons, reason) {
			d.mods[i].Reasons = append(d.mods[i].Reasons, reason)
		}
		return
	}
	d.at[mod] = len(d.mods)
	d.mods = append(d.mods, StorageModule{Name: mod, Builtin: builtin, Reasons: []string{reason}})
}

// maxDepth bounds the slaves of slaves followed (a loop in a broken tree).
const maxDepth = 16

// block walks the block device name: via says what it is part of (", a
// slave of dm-0 (vg0-crash)"), tail which target it is for.
func (d *detector) block(name, via, tail string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: slaves nested more than %d deep", name, maxDepth)
	}
	class := filepath.Join(d.o.SysRoot, "class", "block", name)
	dir, err := filepath.EvalSymlinks(class)
	if err != nil {
		return fmt.Errorf("block device %s: %w", name, err)
	}
	chain := d.parents(dir, nil)
	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		chain = d.parents(dev, chain)
	}
	label := name
	if dm := readTrim(filepath.Join(dir, "dm", "name")); dm != "" {
		label = name + " (" + dm + ")"
	}
	for _, p := range chain {
		for _, sub := range [][2]string{{"slaves", "slave"}, {"multipath", "path"}} {
			ents, _ := os.ReadDir(filepath.Join(p, sub[0])) // most devices have none
			for _, e := range ents {
				if err := d.block(e.Name(), ", a "+sub[1]+" of "+label+via, tail, depth+1); err != nil {
					return err
				}
			}
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d.node(chain[i], ", a parent of "+name+via+tail)
	}
	if dm := readTrim(filepath.Join(dir, "dm", "name")); dm != "" {
		d.dm(name, dm, readTrim(filepath.Join(dir, "dm", "uuid")), via+tail)
	}
	if level := readTrim(filepath.Join(dir, "md", "level")); level != "" {
		d.md(name, level, via+tail)
	}
	return nil
}

// parents appends dir and its parents below SysRoot/devices to chain,
// bottom up, skipping those already in it.
func (d *detector) parents(dir string, chain []string) []string {
	top := filepath.Join(d.o.SysRoot, "devices")
	if real, err := filepath.EvalSymlinks(top); err == nil {
		top = real
	}
	for p := dir; strings.HasPrefix(p, top+string(filepath.Separator)); p = filepath.Dir(p) {
		if !slices.Contains(chain, p) {
			chain = append(chain, p)
		}
	}
	return chain
}

// node adds the module of the device in dir, if it has a driver.
func (d *detector) node(dir, tail string) {
	what := filepath.Base(dir)
	if sub, err := os.Readlink(filepath.Join(dir, "subsystem")); err == nil {
		what += " (" + filepath.Base(sub) + ")"
	}
	if drv, err := os.Readlink(filepath.Join(dir, "driver")); err == nil {
		mod, err := os.Readlink(filepath.Join(dir, "driver", "module"))
		if err == nil {
			d.add(filepath.Base(mod), "driver of "+what+tail)
			if d.idx.has(filepath.Base(mod)) {
				return
			}
		} else if name := moduleName(filepath.Base(drv)); d.idx.path[name] != "" || d.idx.builtin[name] {
			// Built into this kernel, a module of the same name in the
			// capture kernel's (or built into it too).
			d.add(name, "driver of "+what+tail)
			return
		}
	}
	alias := readTrim(filepath.Join(dir, "modalias"))
	if alias == "" {
		alias = ueventValue(filepath.Join(dir, "uevent"), "MODALIAS")
	}
	if alias == "" {
		return
	}
	for _, m := range d.idx.matches(alias) {
		d.add(m, "modalias "+alias+" of "+what+tail)
	}
}

// dmTypeModules are the modules of device-mapper target types whose module
// is not called dm_TYPE (or aliased dm-TYPE). linear, striped and error
// are in dm_mod.
var dmTypeModules = map[string][]string{
	"linear":          nil,
	"striped":         nil,
	"error":           nil,
	"thin":            {"dm_thin_pool"},
	"thin-pool":       {"dm_thin_pool"},
	"cache":           {"dm_cache", "dm-cache-default"},
	"snapshot":        {"dm_snapshot"},
	"snapshot-origin": {"dm_snapshot"},
	"snapshot-merge":  {"dm_snapshot"},
}

// dm adds dm_mod and the modules of the table of the device-mapper device
// name, called dmName here.
func (d *detector) dm(name, dmName, uuid, tail string) {
	label := name + " (" + dmName
	switch kind, _, _ := strings.Cut(uuid, "-"); kind {
	case "LVM":
		label += ", LVM"
	case "CRYPT":
		label += ", dm-crypt"
	case "mpath":
		label += ", multipath"
	}
	label += ")"
	d.add("dm_mod", "device-mapper device "+label+tail)
	types, err := d.o.DMTable(dmName)
	if err != nil {
		d.warn("%s: cannot read its device-mapper table (%v): assuming linear and striped segments, which dm_mod has", label, err)
		return
	}
	for _, t := range types {
		mods, ok := dmTypeModules[t]
		if !ok {
			mods = []string{"dm-" + t}
		}
		for _, m := range mods {
			d.add(m, "target type "+t+" of "+label+tail)
		}
		if t != "linear" && t != "striped" {
			d.warn("%s uses the device-mapper target %s: the capture environment sets up only LVM's linear and striped volumes", label, t)
		}
	}
}

// mdLevels are the modules of md RAID levels not called by the level.
var mdLevels = map[string]string{"raid4": "raid456", "raid5": "raid456", "raid6": "raid456"}

// md adds md_mod and the module of an md array's level.
func (d *detector) md(name, level, tail string) {
	d.add("md_mod", "md array "+name+tail)
	m := level
	if l, ok := mdLevels[level]; ok {
		m = l
	}
	d.add(m, "level "+level+" of md array "+name+tail)
	d.warn("%s is an md array (%s): the capture environment does not assemble md arrays", name, level)
}

// fs adds the module of disk's file system.
func (d *detector) fs(disk HostDisk, tail string) {
	if disk.FSType == "" {
		d.warn("%s: no file system found on %s: the image gets no file system module for it (set the target's fstype, or --module)", disk.Target, disk.Device)
		return
	}
	reason := "file system " + disk.FSType + " on " + disk.Device + tail
	if m, _, ok := d.idx.lookup("fs-" + disk.FSType); ok {
		d.add(m, reason)
	} else {
		d.add(disk.FSType, reason)
	}
	if disk.FSType == "vfat" {
		for _, cp := range vfatCodepages {
			if d.idx.has(cp) {
				d.add(cp, "code page of "+reason)
			}
		}
	}
}

// matches returns every module whose modules.alias pattern matches alias,
// in file order, as modprobe loads them all.
func (idx *index) matches(alias string) []string {
	a := normaliseAlias(alias)
	var mods []string
	for _, pm := range idx.aliases {
		if ok, _ := path.Match(pm[0], a); ok && !slices.Contains(mods, pm[1]) {
			mods = append(mods, pm[1])
		}
	}
	return mods
}

// readTrim returns the contents of a sysfs file without surrounding white
// space, "" if it cannot be read (most attributes are optional).
func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ueventValue returns KEY's value in a uevent file, "" if absent.
func ueventValue(p, key string) string {
	for line := range strings.Lines(readTrim(p)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == key {
			return v
		}
	}
	return ""
}

// storageModules returns the modules for c's disk targets that o asks for.
func storageModules(c *config.Config, resolved []Resolved, o ConfigOpts) ([]StorageModule, []string, error) {
	var names []string
	switch o.Storage {
	case HostOnly:
		disks, err := hostDisks(c, resolved, o.Host)
		if err != nil || len(disks) == 0 {
			return nil, nil, err
		}
		if o.KernelVersion == "" {
			return nil, nil, errors.New("host-only detection: no kernel version given")
		}
		dir := o.ModulesDir
		if dir == "" {
			dir = filepath.Join("/lib/modules", o.KernelVersion)
		}
		return DetectStorage(disks, dir, o.Host)
	case Generic:
		names = GenericStorageModules
	case GenericVirtio:
		names = DefaultModules(true, false)
	default:
		return nil, nil, fmt.Errorf("unknown storage set %q (want %q or %q)", o.Storage, Generic, GenericVirtio)
	}
	if !slices.ContainsFunc(c.Targets, func(t config.Target) bool { return !t.IsNetwork() }) {
		return nil, nil, nil
	}
	mods := make([]StorageModule, len(names))
	for i, n := range names {
		mods[i] = StorageModule{Name: n, Reasons: []string{"--generic=" + string(o.Storage)}}
	}
	return mods, nil, nil
}
