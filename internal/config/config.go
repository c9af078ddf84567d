// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package config holds ukdump's one configuration type: TOML parsing, defaults,
// validation, and the ukdump.* overrides read from the capture kernel's command line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ukdump/ukdump/internal/dumplevel"
	"github.com/ukdump/ukdump/internal/pagecodec"
	"github.com/ukdump/ukdump/internal/targetspec"
)

// Config is the whole capture configuration, baked into the image as
// /etc/ukdump/ukdump.toml.
type Config struct {
	// Host names the dump directory (<host>-<crash time>); default: the
	// crashed kernel's node name from VMCOREINFO is not available, so "ukdump"
	// unless set here or by ukdump.host= on the command line.
	Host      string    `toml:"host"`
	Collect   Collect   `toml:"collect"`
	Targets   []Target  `toml:"target"`
	Network   Network   `toml:"network"`
	Action    Action    `toml:"action"`
	Retention Retention `toml:"retention"`
	// Debug turns on verbose logging in the capture environment.
	Debug bool `toml:"debug"`
	// Test marks a test crash (ukdump test loads the capture kernel with
	// ukdump.test=1): its manifest says so. Only from the command line.
	Test bool `toml:"-"`
}

// Collect says how the dump is written.
type Collect struct {
	// Format is "kdump" (default: kdump-compressed, what crash prefers),
	// "elf" (an ELF core) or "flat" (kdump-compressed as a flattened stream).
	// Network targets always get a stream: kdump becomes flat there.
	Format string `toml:"format"`
	// Compression of kdump pages: lzo (default, DefaultCompression),
	// snappy, zstd, zlib, none (docs/design.md has the measured table). crash 8
	// and libkdumpfile read all four codecs; Debian 12's makedumpfile 1.7.2
	// reads zlib and LZO but not zstd or snappy.
	Compression string `toml:"compression"`
	// CPUs is how many CPUs the capture kernel brings up (its nr_cpus=):
	// collect compresses on each. Every CPU costs the capture memory, which
	// ukdump load adds to the crashkernel= it asks for. Default DefaultCPUs.
	CPUs int `toml:"cpus"`
	// Exclude lists page classes to leave out: zero, cache, cache-private,
	// user, free (makedumpfile -d 1, 2, 4, 8, 16). Default: all of them
	// (-d 31); ["none"] saves every page.
	Exclude []string `toml:"exclude"`
	// DumpLevel is makedumpfile's -d N; Exclude and DumpLevel are alternatives.
	DumpLevel int `toml:"dump_level"`
	// Dmesg writes vmcore-dmesg.txt beside the dump.
	Dmesg bool `toml:"dmesg"`
}

// DefaultCompression is collect.compression when not set (format kdump or
// flat). Chosen by measurement (docs/design.md, "Speed"): since LZO's
// encoder is assembly on amd64 and tries the last match distances, on one
// CPU in the capture kernel of a 64 GiB QEMU guest it saved the dump in
// 18.1 s against snappy's 26.5 s, in a file 8% smaller; page by page it
// runs at 2.0x liblzo2's speed (makedumpfile -l) on a big machine's pages
// and 1.01-1.06x on kernel and mixed pages, its files smaller than
// liblzo2's and snappy's on every set; the whole collector takes 0.81-0.93x
// of makedumpfile -l's time. And Debian 12's makedumpfile reads LZO (not
// snappy or zstd).
const DefaultCompression = pagecodec.LZO

// DefaultCPUs is collect.cpus when not set; MaxCPUs its largest value.
const (
	DefaultCPUs = 1
	MaxCPUs     = 64
)

// DefaultDumpLevel leaves out every class makedumpfile can (-d 31, what
// Debian and RHEL use): zero, cache, cache-private, user and free pages.
const DefaultDumpLevel = dumplevel.Default

// Level is the dump level: from Exclude or DumpLevel, else DefaultDumpLevel.
func (c Collect) Level() (int, error) {
	if len(c.Exclude) == 0 {
		if c.DumpLevel == 0 {
			return DefaultDumpLevel, nil
		}
		return c.DumpLevel, nil
	}
	level, err := dumplevel.FromNames(c.Exclude)
	if err != nil {
		return 0, err
	}
	if c.DumpLevel != 0 && c.DumpLevel != level {
		return 0, fmt.Errorf("exclude = %q is dump level %d but dump_level = %d: set one of them", c.Exclude, level, c.DumpLevel)
	}
	return level, nil
}

// Target is one place a dump may be saved; targets are tried in order.
type Target struct {
	// Device selects a local disk: UUID=…, LABEL=…, PARTUUID=… or /dev/….
	Device string `toml:"device"`
	// Path is the directory on the target under which dump directories are made.
	Path string `toml:"path"`
	// FSType is the file system to mount; empty means detect it.
	FSType string `toml:"fstype"`
	// MountOptions are passed to mount(2) as data.
	MountOptions string `toml:"mount_options"`
	// URL selects a network target: sftp://user@host[:port]/path, scp://…,
	// or s3://bucket/prefix.
	URL                   string `toml:"url"`
	Identity              string `toml:"identity"`
	KnownHosts            string `toml:"known_hosts"`
	InsecureIgnoreHostKey bool   `toml:"insecure_ignore_host_key"`
	// Endpoint is an s3 target's server: https://host[:port] (or http://).
	Endpoint string `toml:"endpoint"`
	// Region signs an s3 target's requests (default us-east-1).
	Region string `toml:"region"`
	// AccessKeyFile and SecretKeyFile hold an s3 target's credentials: files
	// on the build host, not readable by others, put into the image 0600.
	AccessKeyFile string `toml:"access_key_file"`
	SecretKeyFile string `toml:"secret_key_file"`
	// CAFile holds the PEM certificates an https endpoint's chain must end
	// in; default: the build host's CA bundle, copied into the image.
	CAFile string `toml:"ca_file"`
	// PartSize is an s3 target's multipart part size (default 8MiB, 5MiB
	// to 64MiB); the upload holds two parts in memory.
	PartSize Size `toml:"part_size"`
	// WaitDevice bounds the wait for the device to appear (default 60s).
	WaitDevice Duration `toml:"wait_device"`
}

// Network configures bring-up for network targets: the capture brings the
// network up when the first network target is tried (netup.Up takes it as
// it is).
type Network struct {
	// Interface is "auto" (default: the first Ethernet interface with
	// carrier), a kernel interface name such as "eth0", or a MAC address.
	Interface string `toml:"interface"`
	// Mode is "dhcp" (default, DHCPv4) or "static".
	Mode string `toml:"mode"`
	// Address is the static address with prefix length, e.g. "192.0.2.20/24".
	Address string `toml:"address"`
	// Gateway is the static default gateway, e.g. "192.0.2.1" (optional).
	Gateway string `toml:"gateway"`
	// DNS lists name servers; with DHCP they replace the lease's.
	DNS []string `toml:"dns"`
	// WaitCarrier bounds the wait for the interface and its carrier (default 30s).
	WaitCarrier Duration `toml:"wait_carrier"`
	// DHCPTimeout is the first DHCP attempt's wait for an answer; each
	// retry waits twice as long (default 4s).
	DHCPTimeout Duration `toml:"dhcp_timeout"`
	// DHCPRetries is how many times an unanswered DHCP message is resent
	// (default 3: 4s+8s+16s+32s at most with the default timeout).
	DHCPRetries int `toml:"dhcp_retries"`
}

// Network defaults.
const (
	DefaultWaitCarrier = 30 * time.Second
	DefaultDHCPTimeout = 4 * time.Second
	DefaultDHCPRetries = 3
)

// Action says what happens at the end of a capture.
type Action struct {
	// Final runs after a saved dump, or when there is no dump: reboot (default), poweroff, halt, shell.
	Final string `toml:"final"`
	// Failure runs when the dump could not be saved (default reboot).
	Failure string `toml:"failure"`
	// Deadline ends a capture that has not finished in time (default 30m).
	Deadline Duration `toml:"deadline"`
}

// Retention limits what is kept on each target.
type Retention struct {
	// Keep is the number of dumps kept per target, this one included; 0 keeps all.
	Keep int `toml:"keep"`
	// MinFree is the space a target must have before writing (e.g. "1GiB").
	MinFree Size `toml:"min_free"`
}

// Duration is a time.Duration written as "30s", "5m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 90s, 30m)", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a byte count written as "512MiB", "1GiB", "1G" or a plain number.
type Size int64

// UnmarshalText parses a size with an optional binary or decimal suffix.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// MarshalText writes the size as a plain byte count.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// ParseSize parses "123", "4k", "512MiB", "1G", "2GB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 512MiB, 1GiB)", s)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
	}[strings.ToLower(strings.TrimSpace(t[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB)", s, t[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n * mult, nil
}

// Final actions.
const (
	ActionReboot   = "reboot"
	ActionPoweroff = "poweroff"
	ActionHalt     = "halt"
	ActionShell    = "shell"
)

// Default returns the configuration used for fields a file leaves out.
func Default() Config {
	return Config{
		Collect: Collect{Format: "kdump", Dmesg: true}, // compression: fill()
		Network: Network{Interface: "auto", Mode: "dhcp", WaitCarrier: Duration{DefaultWaitCarrier},
			DHCPTimeout: Duration{DefaultDHCPTimeout}, DHCPRetries: DefaultDHCPRetries},
		Action: Action{Final: ActionReboot, Failure: ActionReboot, Deadline: Duration{30 * time.Minute}},
	}
}

// Parse reads a TOML config over the defaults and validates it.
func Parse(data []byte) (*Config, error) {
	c := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config: unknown key(s) %s", strings.Join(keys, ", "))
	}
	c.fill()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Marshal writes the config as TOML.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return b.Bytes(), nil
}

func (c *Config) fill() {
	if c.Collect.CPUs == 0 {
		c.Collect.CPUs = DefaultCPUs
	}
	if c.Collect.Compression == "" {
		c.Collect.Compression = DefaultCompression
		if c.Collect.Format == "elf" {
			c.Collect.Compression = "none"
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Device != "" && t.Path == "" {
			t.Path = "/"
		}
		if t.WaitDevice.Duration == 0 {
			t.WaitDevice.Duration = 60 * time.Second
		}
	}
	if c.Network.Interface == "" {
		c.Network.Interface = "auto"
	}
	if c.Network.Mode == "" {
		c.Network.Mode = "dhcp"
	}
}

// IsNetwork reports whether the target saves over the network.
func (t Target) IsNetwork() bool { return t.URL != "" }

// IsS3 reports whether the target is an S3 bucket (s3://…).
func (t Target) IsS3() bool { return targetspec.IsS3(t.URL) }

// RuntimeBytes is the memory the capture needs for its targets beyond
// kexec.RuntimeMargin: the largest S3 upload's part buffers (the other
// targets' needs are in the margin). ukdump build records it in the image,
// and ukdump load adds it to the reservation it asks for.
func (c *Config) RuntimeBytes() int64 {
	var n int64
	for _, t := range c.Targets {
		if t.IsS3() {
			n = max(n, targetspec.S3UploadBytes(int64(t.PartSize)))
		}
	}
	return n
}

// NetHost is the host a network target connects to: an s3 target's
// endpoint host, else the url's; "" if they do not parse.
func (t Target) NetHost() string {
	if t.IsS3() {
		s, err := targetspec.ParseS3(t.URL, t.Endpoint)
		if err != nil {
			return ""
		}
		return s.Endpoint.Hostname()
	}
	u, err := targetspec.ParseURL(t.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// NetAddr is host:port of a network target's server.
func (t Target) NetAddr() (string, error) {
	if t.IsS3() {
		s, err := targetspec.ParseS3(t.URL, t.Endpoint)
		if err != nil {
			return "", err
		}
		return s.Addr(), nil
	}
	u, err := targetspec.ParseURL(t.URL)
	if err != nil {
		return "", err
	}
	return u.Addr(), nil
}

// AutoDevice reports whether t is a disk target without a device (omitted or
// "auto"): the file system that holds Path on the machine that builds the
// image, which ukdump build resolves to a UUID=.
func (t Target) AutoDevice() bool { return t.URL == "" && (t.Device == "" || t.Device == DeviceAuto) }

// DeviceAuto is the device of a target that ukdump build resolves.
const DeviceAuto = "auto"

// String names the target in log lines.
func (t Target) String() string {
	if t.IsNetwork() {
		return t.URL
	}
	return t.Device + ":" + t.Path
}

var validActions = []string{ActionReboot, ActionPoweroff, ActionHalt, ActionShell}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Host != "" && strings.ContainsAny(c.Host, "/ \t\n") {
		bad("host", "%q must not contain '/' or spaces", c.Host)
	}
	switch c.Collect.Format {
	case "elf":
		if c.Collect.Compression != "none" && c.Collect.Compression != "" {
			bad("collect.compression", "%q is not possible with format \"elf\" (want none, or format \"kdump\")", c.Collect.Compression)
		}
	case "kdump", "flat":
		if c.Collect.Compression != "" && !pagecodec.Valid(c.Collect.Compression) {
			bad("collect.compression", "unsupported compression %q (want %s)", c.Collect.Compression, strings.Join(pagecodec.Names, ", "))
		}
	default:
		bad("collect.format", "unsupported format %q (want kdump, elf, flat)", c.Collect.Format)
	}
	if c.Collect.CPUs < 0 || c.Collect.CPUs > MaxCPUs {
		bad("collect.cpus", "%d is out of range (want 1 to %d, or leave it out for %d)", c.Collect.CPUs, MaxCPUs, DefaultCPUs)
	}
	if level, err := c.Collect.Level(); err != nil {
		bad("collect.exclude", "%v", err)
	} else if err := dumplevel.Check(level); err != nil {
		bad("collect.exclude", "%v", err)
	}
	if len(c.Targets) == 0 {
		bad("target", "no [[target]] configured (want at least one, e.g. device = \"LABEL=crashdump\")")
	}
	for i, t := range c.Targets {
		f := fmt.Sprintf("target[%d]", i)
		switch {
		case t.Device != "" && t.URL != "":
			bad(f, "set either device or url, not both")
		case t.IsS3():
			t.checkS3(f, bad)
		case t.URL != "":
			if _, err := targetspec.ParseURL(t.URL); err != nil {
				bad(f+".url", "%v", err)
				break
			}
			switch {
			case t.Identity == "":
				bad(f+".identity", "a url target needs identity = \"/etc/ukdump/id_ed25519\" (an OpenSSH private key without passphrase: ed25519, ecdsa or rsa; there is no password authentication)")
			case !strings.HasPrefix(t.Identity, "/"):
				bad(f+".identity", "%q must be an absolute path", t.Identity)
			}
			switch {
			case t.KnownHosts == "" && !t.InsecureIgnoreHostKey:
				bad(f+".known_hosts", "a url target needs known_hosts = \"/etc/ukdump/known_hosts\" holding the server's host key (e.g. from ssh-keyscan), or insecure_ignore_host_key = true to accept any key")
			case t.KnownHosts != "" && !strings.HasPrefix(t.KnownHosts, "/"):
				bad(f+".known_hosts", "%q must be an absolute path", t.KnownHosts)
			}
			if t.Path != "" || t.FSType != "" || t.MountOptions != "" {
				bad(f, "path, fstype and mount_options are for device targets (put the remote directory in the url)")
			}
			if t.Endpoint != "" || t.Region != "" || t.AccessKeyFile != "" || t.SecretKeyFile != "" || t.CAFile != "" || t.PartSize != 0 {
				bad(f, "endpoint, region, access_key_file, secret_key_file, ca_file and part_size are for s3:// targets")
			}
		case t.AutoDevice() && t.Path != "":
			// The file system that holds path on the machine that builds
			// the image: ukdump build resolves it to UUID=….
			if !strings.HasPrefix(t.Path, "/") || strings.Contains(t.Path, "..") {
				bad(f+".path", "%q must be an absolute path without '..'", t.Path)
			}
		case t.Device != "":
			if _, err := targetspec.ParseDevice(t.Device); err != nil {
				// The "blkid: " prefix keeps the message it had when
				// blkid checked the spec (tests pin it).
				bad(f+".device", "blkid: %v", err)
			}
			if !strings.HasPrefix(t.Path, "/") || strings.Contains(t.Path, "..") {
				bad(f+".path", "%q must be an absolute path without '..'", t.Path)
			}
		default:
			bad(f, "needs device = \"LABEL=…\" (or UUID=, PARTUUID=, /dev/…) or url = \"sftp://…\" (or \"s3://bucket/prefix\")")
		}
		if t.WaitDevice.Duration < 0 {
			bad(f+".wait_device", "must not be negative")
		}
	}
	if !oneOf(c.Action.Final, validActions...) {
		bad("action.final", "unsupported action %q (want %s)", c.Action.Final, strings.Join(validActions, ", "))
	}
	if !oneOf(c.Action.Failure, validActions...) {
		bad("action.failure", "unsupported action %q (want %s)", c.Action.Failure, strings.Join(validActions, ", "))
	}
	if c.Action.Deadline.Duration <= 0 {
		bad("action.deadline", "must be positive (e.g. \"30m\")")
	}
	if c.Retention.Keep < 0 {
		bad("retention.keep", "must not be negative (0 keeps every dump)")
	}
	if c.Retention.MinFree < 0 {
		bad("retention.min_free", "must not be negative")
	}
	c.Network.check(bad)
	return errors.Join(errs...)
}

// checkS3 validates an s3 target.
func (t Target) checkS3(f string, bad func(field, format string, args ...any)) {
	if _, _, err := targetspec.ParseS3URL(t.URL); err != nil {
		bad(f+".url", "%v", err)
	}
	if t.Endpoint == "" {
		bad(f+".endpoint", "an s3 target needs endpoint = \"https://s3.example.com\" (the server; http:// only on a network you trust)")
	} else if e, err := targetspec.ParseEndpoint(t.Endpoint); err != nil {
		bad(f+".endpoint", "%v", err)
	} else if e.Scheme == "http" && t.CAFile != "" {
		bad(f+".ca_file", "is for https endpoints (endpoint is %q)", t.Endpoint)
	}
	for _, k := range []struct{ name, v, example string }{
		{"access_key_file", t.AccessKeyFile, "/etc/ukdump/s3-access-key"},
		{"secret_key_file", t.SecretKeyFile, "/etc/ukdump/s3-secret-key"},
	} {
		switch {
		case k.v == "":
			bad(f+"."+k.name, "an s3 target needs %s = %q (a file holding the key, mode 0600)", k.name, k.example)
		case !strings.HasPrefix(k.v, "/"):
			bad(f+"."+k.name, "%q must be an absolute path", k.v)
		}
	}
	if t.CAFile != "" && !strings.HasPrefix(t.CAFile, "/") {
		bad(f+".ca_file", "%q must be an absolute path", t.CAFile)
	}
	if t.PartSize != 0 && (t.PartSize < targetspec.S3MinPartSize || t.PartSize > targetspec.S3MaxPartSize) {
		bad(f+".part_size", "%d bytes is not within 5MiB-64MiB (S3 wants 5MiB at least; the capture holds two parts in memory)", int64(t.PartSize))
	}
	if t.Region != "" && strings.ContainsAny(t.Region, "/ \t\n") {
		bad(f+".region", "%q is not a region name (e.g. us-east-1)", t.Region)
	}
	if t.Identity != "" || t.KnownHosts != "" || t.InsecureIgnoreHostKey {
		bad(f, "identity, known_hosts and insecure_ignore_host_key are for sftp:// and scp:// targets")
	}
	if t.Path != "" || t.FSType != "" || t.MountOptions != "" {
		bad(f, "path, fstype and mount_options are for device targets (put the key prefix in the url: s3://bucket/prefix)")
	}
}

// check validates the [network] section.
func (n Network) check(bad func(field, format string, args ...any)) {
	_, macErr := net.ParseMAC(n.Interface)
	switch {
	case n.Interface == "auto", macErr == nil && strings.ContainsAny(n.Interface, ":-"):
	case strings.Contains(n.Interface, ":"):
		bad("network.interface", "%q is not a MAC address (want \"auto\", a name such as eth0, or a MAC such as 52:54:00:12:34:56)", n.Interface)
	case n.Interface == "" || len(n.Interface) > 15 || n.Interface == "." || n.Interface == ".." || strings.ContainsAny(n.Interface, "/: \t\n"):
		bad("network.interface", "%q is not an interface name (want \"auto\", a name such as eth0, or a MAC such as 52:54:00:12:34:56)", n.Interface)
	}
	var addr netip.Prefix
	switch n.Mode {
	case "dhcp":
		if n.Address != "" {
			bad("network.address", "%q is only used with mode = \"static\" (mode is \"dhcp\")", n.Address)
		}
		if n.Gateway != "" {
			bad("network.gateway", "%q is only used with mode = \"static\" (mode is \"dhcp\")", n.Gateway)
		}
	case "static":
		var err error
		if addr, err = netip.ParsePrefix(n.Address); err != nil {
			if n.Address == "" {
				bad("network.address", "mode = \"static\" needs an address with prefix length, e.g. \"192.0.2.20/24\"")
			} else {
				bad("network.address", "%q is not an address with prefix length (want e.g. \"192.0.2.20/24\")", n.Address)
			}
		}
		if n.Gateway != "" {
			gw, err := netip.ParseAddr(n.Gateway)
			switch {
			case err != nil:
				bad("network.gateway", "%q is not an IP address (want e.g. \"192.0.2.1\")", n.Gateway)
			case addr.IsValid() && gw.Is4() != addr.Addr().Is4():
				bad("network.gateway", "%q is not of the same IP version as network.address %q", n.Gateway, n.Address)
			case addr.IsValid() && gw == addr.Addr():
				bad("network.gateway", "%q is network.address itself", n.Gateway)
			}
		}
	default:
		bad("network.mode", "unsupported mode %q (want dhcp, static)", n.Mode)
	}
	for i, d := range n.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			bad(fmt.Sprintf("network.dns[%d]", i), "%q is not an IP address (want e.g. \"192.0.2.53\")", d)
		}
	}
	if n.WaitCarrier.Duration <= 0 {
		bad("network.wait_carrier", "must be positive (e.g. \"30s\")")
	}
	if n.DHCPTimeout.Duration <= 0 {
		bad("network.dhcp_timeout", "must be positive (e.g. \"4s\")")
	}
	if n.DHCPRetries < 0 {
		bad("network.dhcp_retries", "must not be negative (0 sends each DHCP message once)")
	}
}

// ApplyCmdline applies ukdump.* overrides from a kernel command line:
// ukdump.target=DEVICE[:PATH] (replaces the target list), ukdump.action=ACTION
// (final), ukdump.failure=ACTION, ukdump.deadline=DURATION, ukdump.host=NAME,
// ukdump.debug=1, ukdump.test=1 (a test crash). It returns the overrides it
// applied, for the log.
func (c *Config) ApplyCmdline(cmdline string) ([]string, error) {
	var applied []string
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !strings.HasPrefix(k, "ukdump.") {
			if w == "ukdump.debug" {
				c.Debug = true
				applied = append(applied, w)
			}
			continue
		}
		v = strings.Trim(v, `"`)
		switch strings.TrimPrefix(k, "ukdump.") {
		case "target":
			// The path starts with '/', so split at the last ":/": device
			// paths such as /dev/disk/by-path/pci-0000:00:05.0 contain ':'.
			dev, p := strings.TrimSuffix(v, ":"), "/"
			if i := strings.LastIndex(v, ":/"); i >= 0 {
				dev, p = v[:i], v[i+1:]
			}
			c.Targets = []Target{{Device: dev, Path: p, WaitDevice: Duration{60 * time.Second}}}
		case "action":
			c.Action.Final = v
		case "failure":
			c.Action.Failure = v
		case "deadline":
			var d Duration
			if err := d.UnmarshalText([]byte(v)); err != nil {
				return applied, fmt.Errorf("cmdline: %s: %w", w, err)
			}
			c.Action.Deadline = d
		case "host":
			c.Host = v
		case "debug":
			c.Debug = v != "0" && v != "false"
		case "test":
			c.Test = v != "0" && v != "false"
		default:
			// Not fatal: a typo on the command line must not cost the dump.
			applied = append(applied, fmt.Sprintf("%s (ignored: unknown override; want ukdump.target, ukdump.action, ukdump.failure, ukdump.deadline, ukdump.host, ukdump.debug, ukdump.test)", w))
			continue
		}
		applied = append(applied, w)
	}
	if err := c.Validate(); err != nil {
		return applied, fmt.Errorf("after command-line overrides %v: %w", applied, err)
	}
	return applied, nil
}
