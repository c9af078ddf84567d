// Copyright 2026 the ukdump authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ukdump/ukdump/internal/pagecodec"
)

// fullExample is DESIGN.md's configuration sketch adapted to what this
// version supports: format "elf", no page exclusion, device targets only.
const fullExample = `host = "db1"
debug = true

[collect]
format = "elf"
compression = "none"
dmesg = true

[[target]]                   # tried in order until one succeeds
device = "LABEL=crashdump"   # UUID=…, PARTUUID=…, /dev/…
path = "/var/crash"

[[target]]
device = "UUID=9b3c2a10-7d4e-4f5a-8b6c-0d1e2f3a4b5c"
fstype = "ext4"
mount_options = "data=ordered"
wait_device = "5s"

[network]
interface = "auto"           # or a name or MAC
mode = "dhcp"                # dhcp | static

[action]
final = "poweroff"           # reboot | poweroff | halt | shell
failure = "halt"
deadline = "45m"             # after this, give up and take the failure action

[retention]
keep = 3                     # dumps kept per target; oldest removed first
min_free = "1GiB"
`

func TestParseFull(t *testing.T) {
	got, err := Parse([]byte(fullExample))
	if err != nil {
		t.Fatalf("Parse(fullExample) = %v", err)
	}
	want := &Config{
		Host:    "db1",
		Debug:   true,
		Collect: Collect{Format: "elf", Compression: "none", CPUs: DefaultCPUs, Dmesg: true},
		Targets: []Target{
			{Device: "LABEL=crashdump", Path: "/var/crash", WaitDevice: Duration{60 * time.Second}},
			{Device: "UUID=9b3c2a10-7d4e-4f5a-8b6c-0d1e2f3a4b5c", Path: "/", FSType: "ext4", MountOptions: "data=ordered", WaitDevice: Duration{5 * time.Second}},
		},
		Network:   Default().Network,
		Action:    Action{Final: ActionPoweroff, Failure: ActionHalt, Deadline: Duration{45 * time.Minute}},
		Retention: Retention{Keep: 3, MinFree: 1 << 30},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse(fullExample) mismatch (-want, +got):\n%s", diff)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]byte("[[target]]\ndevice = \"LABEL=crashdump\"\n"))
	if err != nil {
		t.Fatalf("Parse(minimal) = %v", err)
	}
	want := &Config{
		Collect:   Collect{Format: "kdump", Compression: DefaultCompression, CPUs: DefaultCPUs, Dmesg: true},
		Targets:   []Target{{Device: "LABEL=crashdump", Path: "/", WaitDevice: Duration{60 * time.Second}}},
		Network:   Default().Network,
		Action:    Action{Final: ActionReboot, Failure: ActionReboot, Deadline: Duration{30 * time.Minute}},
		Retention: Retention{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse(minimal) mismatch (-want, +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	const dev = "[[target]]\ndevice = \"LABEL=crashdump\"\n"
	for _, tt := range []struct {
		name string
		toml string
		want []string // substrings of the error, naming the field
	}{
		{"unknown key", dev + "[action]\nexplode = true\n", []string{"unknown key(s) action.explode"}},
		{"unknown top-level key", "colour = 1\n" + dev, []string{"unknown key(s) colour"}},
		{"not toml", "[[target]\n", []string{"config: toml:"}},
		{"ftp scheme", "[[target]]\nurl = \"ftp://kdump@dumphost/var/crash\"\n", []string{`config: target[0].url: unsupported scheme "ftp"`}},
		{"sftp without identity", "[[target]]\nurl = \"sftp://kdump@dumphost:22/var/crash\"\nknown_hosts = \"/etc/ukdump/known_hosts\"\n", []string{"config: target[0].identity: a url target needs identity ="}},
		{"sftp relative identity", "[[target]]\nurl = \"sftp://kdump@dumphost/var/crash\"\nidentity = \"id\"\nknown_hosts = \"/k\"\n", []string{`config: target[0].identity: "id" must be an absolute path`}},
		{"sftp without known_hosts", "[[target]]\nurl = \"sftp://kdump@dumphost/var/crash\"\nidentity = \"/id\"\n", []string{"config: target[0].known_hosts: a url target needs known_hosts =", "insecure_ignore_host_key = true"}},
		{"sftp relative known_hosts", "[[target]]\nurl = \"sftp://kdump@dumphost/var/crash\"\nidentity = \"/id\"\nknown_hosts = \"kh\"\n", []string{`config: target[0].known_hosts: "kh" must be an absolute path`}},
		{"s3 without endpoint", "[[target]]\nurl = \"s3://dumps/x\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\n", []string{`config: target[0].endpoint: an s3 target needs endpoint = "https://s3.example.com"`}},
		{"s3 bad bucket", "[[target]]\nurl = \"s3://D/x\"\nendpoint = \"https://h\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\n", []string{`config: target[0].url: "s3://D/x": bad bucket name "D"`}},
		{"s3 bad endpoint", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"s3.example.com\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\n", []string{`config: target[0].endpoint: "s3.example.com": want an http:// or https:// url`}},
		{"s3 without keys", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"https://h\"\n", []string{`config: target[0].access_key_file: an s3 target needs access_key_file = "/etc/ukdump/s3-access-key"`, `config: target[0].secret_key_file: an s3 target needs secret_key_file`}},
		{"s3 relative key", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"https://h\"\naccess_key_file = \"a\"\nsecret_key_file = \"/s\"\n", []string{`config: target[0].access_key_file: "a" must be an absolute path`}},
		{"s3 ca_file with http", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"http://h\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\nca_file = \"/ca\"\n", []string{`config: target[0].ca_file: is for https endpoints`}},
		{"s3 small part", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"https://h\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\npart_size = \"1MiB\"\n", []string{`config: target[0].part_size: 1048576 bytes is not within 5MiB-64MiB`}},
		{"s3 with identity", "[[target]]\nurl = \"s3://dumps\"\nendpoint = \"https://h\"\naccess_key_file = \"/a\"\nsecret_key_file = \"/s\"\nidentity = \"/id\"\n", []string{`config: target[0]: identity, known_hosts and insecure_ignore_host_key are for sftp:// and scp:// targets`}},
		{"sftp with endpoint", "[[target]]\nurl = \"sftp://kdump@dumphost/var/crash\"\nidentity = \"/id\"\nknown_hosts = \"/kh\"\nendpoint = \"https://h\"\n", []string{"config: target[0]: endpoint, region, access_key_file, secret_key_file, ca_file and part_size are for s3:// targets"}},
		{"sftp with path", "[[target]]\nurl = \"sftp://kdump@dumphost/var/crash\"\nidentity = \"/id\"\nknown_hosts = \"/kh\"\npath = \"/x\"\n", []string{"config: target[0]: path, fstype and mount_options are for device targets"}},
		{"sftp password", "[[target]]\nurl = \"sftp://kdump:pw@dumphost/var/crash\"\n", []string{"config: target[0].url:", "passwords are not supported"}},
		{"sftp bad port", "[[target]]\nurl = \"scp://kdump@dumphost:0/var/crash\"\n", []string{"config: target[0].url:", `bad port "0"`}},
		{"sftp without path", "[[target]]\nurl = \"sftp://kdump@dumphost\"\n", []string{"config: target[0].url:", "needs an absolute path"}},
		{"sftp dotdot path", "[[target]]\nurl = \"sftp://kdump@dumphost/var/../etc\"\n", []string{"config: target[0].url:", "without '..'"}},
		{"sftp without user", "[[target]]\nurl = \"sftp://dumphost/var/crash\"\n", []string{"config: target[0].url:", "needs user@host"}},
		{"device and url", "[[target]]\ndevice = \"LABEL=x\"\nurl = \"sftp://u@h/x\"\n", []string{"config: target[0]: set either device or url, not both"}},
		{"neither device, url nor path", "[[target]]\nwait_device = \"5s\"\n", []string{"config: target[0]: needs device ="}},
		{"auto device, relative path", "[[target]]\npath = \"var/crash\"\n", []string{"config: target[0].path: \"var/crash\" must be an absolute path"}},
		{"no targets", "", []string{"config: target: no [[target]] configured"}},
		{"bad device spec", "[[target]]\ndevice = \"FOO=bar\"\n", []string{`config: target[0].device: blkid: device spec "FOO=bar": unknown kind "FOO"`}},
		{"empty label", "[[target]]\ndevice = \"LABEL=\"\n", []string{`config: target[0].device: blkid: device spec "LABEL=": empty LABEL`}},
		{"second target named", dev + "[[target]]\ndevice = \"vdb\"\n", []string{`config: target[1].device: blkid: device spec "vdb"`}},
		{"relative path", dev + "path = \"var/crash\"\n", []string{`config: target[0].path: "var/crash" must be an absolute path`}},
		{"dotdot path", dev + "path = \"/var/../etc\"\n", []string{`config: target[0].path: "/var/../etc" must be an absolute path without '..'`}},
		{"negative wait_device", dev + "wait_device = \"-5s\"\n", []string{"config: target[0].wait_device: must not be negative"}},
		{"bad final action", dev + "[action]\nfinal = \"explode\"\n", []string{`config: action.final: unsupported action "explode" (want reboot, poweroff, halt, shell)`}},
		{"bad failure action", dev + "[action]\nfailure = \"\"\n", []string{`config: action.failure: unsupported action ""`}},
		{"negative keep", dev + "[retention]\nkeep = -1\n", []string{"config: retention.keep: must not be negative"}},
		{"bad deadline string", dev + "[action]\ndeadline = \"soon\"\n", []string{`"action.deadline"`, `bad duration "soon"`}},
		{"zero deadline", dev + "[action]\ndeadline = \"0s\"\n", []string{"config: action.deadline: must be positive"}},
		{"negative deadline", dev + "[action]\ndeadline = \"-1m\"\n", []string{"config: action.deadline: must be positive"}},
		{"bad compression", dev + "[collect]\ncompression = \"lz4\"\n", []string{`config: collect.compression: unsupported compression "lz4" (want none, zlib, lzo, snappy, zstd)`}},
		{"bad page class", dev + "[collect]\nexclude = [\"zero\", \"slab\"]\n", []string{`config: collect.exclude: unknown page class "slab"`}},
		{"exclude and dump_level disagree", dev + "[collect]\nexclude = [\"zero\"]\ndump_level = 3\n", []string{"config: collect.exclude:", "set one of them"}},
		{"unknown format", dev + "[collect]\nformat = \"raw\"\n", []string{`config: collect.format: unsupported format "raw"`}},
		{"compression with elf", dev + "[collect]\nformat = \"elf\"\ncompression = \"zstd\"\n", []string{`config: collect.compression: "zstd" is not possible with format "elf"`}},
		{"cpus out of range", dev + "[collect]\ncpus = 65\n", []string{"config: collect.cpus: 65 is out of range (want 1 to 64"}},
		{"negative cpus", dev + "[collect]\ncpus = -1\n", []string{"config: collect.cpus: -1 is out of range"}},
		{"dump_level out of range", dev + "[collect]\ndump_level = 32\n", []string{"config: collect.exclude:", "out of range"}},
		{"bad min_free unit", dev + "[retention]\nmin_free = \"1GiX\"\n", []string{`"retention.min_free"`, `unknown unit "GiX"`}},
		{"bad host", "host = \"a/b\"\n" + dev, []string{`config: host: "a/b" must not contain`}},
		{"bad network mode", dev + "[network]\nmode = \"bootp\"\n", []string{`config: network.mode: unsupported mode "bootp"`}},
		{"bad MAC", dev + "[network]\ninterface = \"52:54:00:12:34\"\n", []string{`config: network.interface: "52:54:00:12:34" is not a MAC address`}},
		{"bad interface name", dev + "[network]\ninterface = \"a/b\"\n", []string{`config: network.interface: "a/b" is not an interface name`}},
		{"long interface name", dev + "[network]\ninterface = \"enp0s31f6abcdefgh\"\n", []string{`config: network.interface: "enp0s31f6abcdefgh" is not an interface name`}},
		{"static without address", dev + "[network]\nmode = \"static\"\n", []string{`config: network.address: mode = "static" needs an address with prefix length, e.g. "192.0.2.20/24"`}},
		{"static address without prefix", dev + "[network]\nmode = \"static\"\naddress = \"192.0.2.20\"\n", []string{`config: network.address: "192.0.2.20" is not an address with prefix length`}},
		{"bad gateway", dev + "[network]\nmode = \"static\"\naddress = \"192.0.2.20/24\"\ngateway = \"gw\"\n", []string{`config: network.gateway: "gw" is not an IP address`}},
		{"gateway of another family", dev + "[network]\nmode = \"static\"\naddress = \"192.0.2.20/24\"\ngateway = \"2001:db8::1\"\n", []string{`config: network.gateway: "2001:db8::1" is not of the same IP version as network.address "192.0.2.20/24"`}},
		{"gateway is the address", dev + "[network]\nmode = \"static\"\naddress = \"192.0.2.20/24\"\ngateway = \"192.0.2.20\"\n", []string{`config: network.gateway: "192.0.2.20" is network.address itself`}},
		{"address with dhcp", dev + "[network]\naddress = \"192.0.2.20/24\"\ngateway = \"192.0.2.1\"\n", []string{`config: network.address: "192.0.2.20/24" is only used with mode = "static"`, `config: network.gateway: "192.0.2.1" is only used with mode = "static"`}},
		{"bad dns", dev + "[network]\ndns = [\"192.0.2.53\", \"ns.example\"]\n", []string{`config: network.dns[1]: "ns.example" is not an IP address`}},
		{"zero wait_carrier", dev + "[network]\nwait_carrier = \"0s\"\n", []string{"config: network.wait_carrier: must be positive"}},
		{"zero dhcp_timeout", dev + "[network]\ndhcp_timeout = \"0s\"\n", []string{"config: network.dhcp_timeout: must be positive"}},
		{"negative dhcp_retries", dev + "[network]\ndhcp_retries = -1\n", []string{"config: network.dhcp_retries: must not be negative"}},
		{
			"several errors together",
			"[[target]]\nurl = \"ftp://h/x\"\n[action]\nfinal = \"explode\"\n[retention]\nkeep = -2\n",
			[]string{`config: target[0].url: unsupported scheme "ftp"`, "config: action.final:", "config: retention.keep:"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.toml))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error containing %q", tt.toml, got, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) = %q, want it to contain %q", tt.toml, err, w)
				}
			}
		})
	}
}

func TestParseURLTarget(t *testing.T) {
	for _, toml := range []string{
		"[[target]]\nurl = \"sftp://kdump@dumphost:2222/var/crash\"\nidentity = \"/etc/ukdump/id_ed25519\"\nknown_hosts = \"/etc/ukdump/known_hosts\"\n",
		"[[target]]\nurl = \"scp://kdump@dumphost/~/crash\"\nidentity = \"/etc/ukdump/id_ed25519\"\ninsecure_ignore_host_key = true\n",
		"[[target]]\nurl = \"s3://dumps/fleet\"\nendpoint = \"https://s3.example.com\"\naccess_key_file = \"/etc/ukdump/s3-access-key\"\nsecret_key_file = \"/etc/ukdump/s3-secret-key\"\npart_size = \"16MiB\"\n",
	} {
		c, err := Parse([]byte(toml))
		if err != nil {
			t.Errorf("Parse(%q) = %v, want nil", toml, err)
			continue
		}
		if !c.Targets[0].IsNetwork() {
			t.Errorf("Parse(%q).Targets[0].IsNetwork() = false, want true", toml)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	const dev = "[[target]]\ndevice = \"LABEL=crashdump\"\n"
	for _, tt := range []struct {
		name, toml string
		want       Network
	}{
		{"defaults", dev, Network{Interface: "auto", Mode: "dhcp", WaitCarrier: Duration{30 * time.Second}, DHCPTimeout: Duration{4 * time.Second}, DHCPRetries: 3}},
		{
			"static by MAC",
			dev + "[network]\ninterface = \"52:54:00:AB:CD:EF\"\nmode = \"static\"\naddress = \"192.0.2.20/24\"\ngateway = \"192.0.2.1\"\ndns = [\"192.0.2.53\", \"2001:db8::53\"]\nwait_carrier = \"10s\"\n",
			Network{Interface: "52:54:00:AB:CD:EF", Mode: "static", Address: "192.0.2.20/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53", "2001:db8::53"},
				WaitCarrier: Duration{10 * time.Second}, DHCPTimeout: Duration{4 * time.Second}, DHCPRetries: 3},
		},
		{
			"dhcp by name, no retries",
			dev + "[network]\ninterface = \"br-lan\"\ndhcp_timeout = \"2s\"\ndhcp_retries = 0\ndns = [\"192.0.2.53\"]\n",
			Network{Interface: "br-lan", Mode: "dhcp", DNS: []string{"192.0.2.53"}, WaitCarrier: Duration{30 * time.Second}, DHCPTimeout: Duration{2 * time.Second}},
		},
		{"static IPv6 without gateway", dev + "[network]\nmode = \"static\"\naddress = \"2001:db8::20/64\"\n",
			Network{Interface: "auto", Mode: "static", Address: "2001:db8::20/64", WaitCarrier: Duration{30 * time.Second}, DHCPTimeout: Duration{4 * time.Second}, DHCPRetries: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.toml, err)
			}
			if diff := cmp.Diff(tt.want, c.Network); diff != "" {
				t.Errorf("Parse(%q).Network (-want, +got):\n%s", tt.toml, diff)
			}
		})
	}
}

func TestValidateJoinsErrors(t *testing.T) {
	c := Default()
	c.Targets = []Target{{URL: "ftp://h/x"}, {Device: "FOO=bar", Path: "/"}}
	c.Action.Final = "explode"
	c.Network.Mode = "dhcp"
	err := c.Validate()
	if err == nil {
		t.Fatalf("Validate() = nil, want errors")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() = %T, want an errors.Join error", err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		fields = append(fields, strings.SplitN(strings.TrimPrefix(e.Error(), "config: "), ":", 2)[0])
	}
	if diff := cmp.Diff([]string{"target[0].url", "target[1].device", "action.final"}, fields); diff != "" {
		t.Errorf("Validate() fields (-want, +got):\n%s", diff)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "123", want: 123},
		{in: "0", want: 0},
		{in: "4k", want: 4 << 10},
		{in: "4KiB", want: 4 << 10},
		{in: "4kB", want: 4000},
		{in: "512MiB", want: 512 << 20},
		{in: "512 MiB", want: 512 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1GiB", want: 1 << 30},
		{in: "1GB", want: 1000 * 1000 * 1000},
		{in: "2T", want: 2 << 40},
		{in: "10b", want: 10},
		{in: "", wantErr: true},
		{in: "bad", wantErr: true},
		{in: "G", wantErr: true},
		{in: "1.5G", wantErr: true},
		{in: "-1G", wantErr: true},
		{in: "12XB", wantErr: true},
		{in: "9223372036854775807k", wantErr: true},
		{in: "99999999T", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v, want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSizeInteger(t *testing.T) {
	c, err := Parse([]byte("[[target]]\ndevice = \"LABEL=x\"\n[retention]\nmin_free = 1073741824\n"))
	if err != nil {
		t.Fatalf("Parse(min_free = 1073741824) = %v", err)
	}
	if c.Retention.MinFree != 1<<30 {
		t.Errorf("Parse(min_free = 1073741824).Retention.MinFree = %d, want %d", c.Retention.MinFree, 1<<30)
	}
}

func TestApplyCmdline(t *testing.T) {
	base := func(t *testing.T) *Config {
		t.Helper()
		c, err := Parse([]byte(fullExample))
		if err != nil {
			t.Fatalf("Parse(fullExample) = %v", err)
		}
		c.Debug = false
		return c
	}
	for _, tt := range []struct {
		name        string
		cmdline     string
		edit        func(c *Config) // the expected change to base
		wantApplied []string
		wantErr     []string
	}{
		{
			name:    "target with path replaces targets",
			cmdline: "console=ttyS0 ukdump.target=LABEL=x:/p",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "LABEL=x", Path: "/p", WaitDevice: Duration{60 * time.Second}}}
			},
			wantApplied: []string{"ukdump.target=LABEL=x:/p"},
		},
		{
			name:    "target default path",
			cmdline: "ukdump.target=/dev/vdb",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "/dev/vdb", Path: "/", WaitDevice: Duration{60 * time.Second}}}
			},
			wantApplied: []string{"ukdump.target=/dev/vdb"},
		},
		{
			name:    "target path with colons",
			cmdline: "ukdump.target=/dev/disk/by-path/pci-0000:00:05.0",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "/dev/disk/by-path/pci-0000:00:05.0", Path: "/", WaitDevice: Duration{60 * time.Second}}}
			},
			wantApplied: []string{"ukdump.target=/dev/disk/by-path/pci-0000:00:05.0"},
		},
		{
			name:    "target path with colons and dump path",
			cmdline: "ukdump.target=/dev/disk/by-path/pci-0000:00:05.0:/var/crash",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "/dev/disk/by-path/pci-0000:00:05.0", Path: "/var/crash", WaitDevice: Duration{60 * time.Second}}}
			},
			wantApplied: []string{"ukdump.target=/dev/disk/by-path/pci-0000:00:05.0:/var/crash"},
		},
		{
			name:    "target empty path",
			cmdline: "ukdump.target=LABEL=x:",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "LABEL=x", Path: "/", WaitDevice: Duration{60 * time.Second}}}
			},
			wantApplied: []string{"ukdump.target=LABEL=x:"},
		},
		{
			name:        "action",
			cmdline:     "ukdump.action=poweroff",
			edit:        func(c *Config) { c.Action.Final = ActionPoweroff },
			wantApplied: []string{"ukdump.action=poweroff"},
		},
		{
			name:        "failure",
			cmdline:     "ukdump.failure=shell",
			edit:        func(c *Config) { c.Action.Failure = ActionShell },
			wantApplied: []string{"ukdump.failure=shell"},
		},
		{
			name:        "deadline",
			cmdline:     "ukdump.deadline=90s",
			edit:        func(c *Config) { c.Action.Deadline = Duration{90 * time.Second} },
			wantApplied: []string{"ukdump.deadline=90s"},
		},
		{
			name:    "bad deadline",
			cmdline: "ukdump.deadline=soon",
			wantErr: []string{"ukdump.deadline=soon", `bad duration "soon"`},
		},
		{
			name:        "host",
			cmdline:     `ukdump.host="web2"`,
			edit:        func(c *Config) { c.Host = "web2" },
			wantApplied: []string{`ukdump.host="web2"`},
		},
		{
			name:        "debug bare",
			cmdline:     "ukdump.debug",
			edit:        func(c *Config) { c.Debug = true },
			wantApplied: []string{"ukdump.debug"},
		},
		{
			name:        "debug=1",
			cmdline:     "ukdump.debug=1",
			edit:        func(c *Config) { c.Debug = true },
			wantApplied: []string{"ukdump.debug=1"},
		},
		{
			name:        "debug=0",
			cmdline:     "ukdump.debug ukdump.debug=0",
			edit:        func(c *Config) { c.Debug = false },
			wantApplied: []string{"ukdump.debug", "ukdump.debug=0"},
		},
		{
			name:        "unknown override ignored",
			cmdline:     "ukdump.foo=1",
			wantApplied: []string{"ukdump.foo=1 (ignored: unknown override; want ukdump.target, ukdump.action, ukdump.failure, ukdump.deadline, ukdump.host, ukdump.debug, ukdump.test)"},
		},
		{
			name:    "other words ignored",
			cmdline: "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet console=ttyS0 reset_devices nr_cpus=1 elfcorehdr=0x7f000000 notukdump.action=halt",
		},
		{
			name:    "override makes config invalid",
			cmdline: "ukdump.action=explode",
			wantErr: []string{"ukdump.action=explode", `action.final: unsupported action "explode"`},
		},
		{
			name:    "bad target",
			cmdline: "ukdump.target=FOO=bar",
			wantErr: []string{"ukdump.target=FOO=bar", "target[0].device"},
		},
		{
			name:    "several overrides",
			cmdline: "ukdump.target=UUID=1234-ABCD:/dumps ukdump.action=halt ukdump.failure=poweroff ukdump.deadline=2m ukdump.host=h",
			edit: func(c *Config) {
				c.Targets = []Target{{Device: "UUID=1234-ABCD", Path: "/dumps", WaitDevice: Duration{60 * time.Second}}}
				c.Action = Action{Final: ActionHalt, Failure: ActionPoweroff, Deadline: Duration{2 * time.Minute}}
				c.Host = "h"
			},
			wantApplied: []string{"ukdump.target=UUID=1234-ABCD:/dumps", "ukdump.action=halt", "ukdump.failure=poweroff", "ukdump.deadline=2m", "ukdump.host=h"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := base(t)
			applied, err := got.ApplyCmdline(tt.cmdline)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ApplyCmdline(%q) = %q, nil, want error containing %q", tt.cmdline, applied, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("ApplyCmdline(%q) = %q, want it to contain %q", tt.cmdline, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyCmdline(%q) = %v", tt.cmdline, err)
			}
			if diff := cmp.Diff(tt.wantApplied, applied); diff != "" {
				t.Errorf("ApplyCmdline(%q) applied (-want, +got):\n%s", tt.cmdline, diff)
			}
			want := base(t)
			if tt.edit != nil {
				tt.edit(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ApplyCmdline(%q) config (-want, +got):\n%s", tt.cmdline, diff)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		toml string
	}{
		{"full", fullExample},
		{"minimal", "[[target]]\ndevice = \"/dev/vdb\"\n"},
		{"odd values", "host = \"h\"\n[[target]]\ndevice = 'LABEL=\"my dumps\"'\nwait_device = \"1m30s\"\n[action]\ndeadline = \"1h2m3s\"\n[retention]\nmin_free = \"1GB\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := Parse([]byte(tt.toml))
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.toml, err)
			}
			data, err := want.Marshal()
			if err != nil {
				t.Fatalf("Marshal() = %v", err)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse(Marshal()) = %v\n%s", err, data)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse(Marshal()) mismatch (-want, +got):\n%s\nmarshalled:\n%s", diff, data)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{Target{Device: "LABEL=crashdump", Path: "/var/crash"}, "LABEL=crashdump:/var/crash"},
		{Target{URL: "sftp://u@h/x"}, "sftp://u@h/x"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.t, got, tt.want)
		}
		if got, want := tt.t.IsNetwork(), tt.t.URL != ""; got != want {
			t.Errorf("%#v.IsNetwork() = %t, want %t", tt.t, got, want)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("bogus")); err == nil {
		t.Errorf("Duration.UnmarshalText(bogus) = nil, want error")
	}
	if err := d.UnmarshalText([]byte("90s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("Duration.UnmarshalText(90s) = %v, %v, want 1m30s, nil", d.Duration, err)
	}
	b, err := d.MarshalText()
	if err != nil || string(b) != "1m30s" {
		t.Errorf("Duration(90s).MarshalText() = %q, %v, want 1m30s, nil", b, err)
	}
	var s Size
	if err := s.UnmarshalText([]byte("x")); err == nil {
		t.Errorf("Size.UnmarshalText(x) = nil, want error")
	}
}

// A disk target without a device is the file system that holds its path on
// the build machine (ukdump build resolves it): the package's default config.
func TestAutoDevice(t *testing.T) {
	for _, toml := range []string{"[[target]]\npath = \"/var/crash\"\n", "[[target]]\ndevice = \"auto\"\npath = \"/var/crash\"\n"} {
		c, err := Parse([]byte(toml))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", toml, err)
		}
		if !c.Targets[0].AutoDevice() || c.Targets[0].IsNetwork() {
			t.Errorf("Parse(%q): AutoDevice() = false", toml)
		}
	}
	c, err := Parse([]byte("[[target]]\ndevice = \"LABEL=x\"\npath = \"/\"\n"))
	if err != nil || c.Targets[0].AutoDevice() {
		t.Errorf("a LABEL= target: %v, AutoDevice() = %v", err, err == nil && c.Targets[0].AutoDevice())
	}
}

func TestRuntimeBytes(t *testing.T) {
	s3 := func(part Size) Target {
		return Target{URL: "s3://dumps", Endpoint: "https://h", AccessKeyFile: "/a", SecretKeyFile: "/s", PartSize: part}
	}
	for _, tt := range []struct {
		name    string
		targets []Target
		want    int64
	}{
		{"disk only", []Target{{Device: "LABEL=x", Path: "/"}}, 0},
		{"s3 default parts", []Target{s3(0), {Device: "LABEL=x", Path: "/"}}, 16 << 20},
		{"the largest s3 upload", []Target{s3(5 << 20), s3(32 << 20)}, 64 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Targets: tt.targets}
			if got := c.RuntimeBytes(); got != tt.want {
				t.Errorf("RuntimeBytes() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestParseCodecsAndCPUs: every codec kdumpfile writes is accepted, and
// collect.cpus is kept as given.
func TestParseCodecsAndCPUs(t *testing.T) {
	for _, codec := range pagecodec.Names {
		c, err := Parse([]byte("[collect]\ncompression = \"" + codec + "\"\ncpus = 2\n[[target]]\ndevice = \"LABEL=crashdump\"\n"))
		if err != nil {
			t.Fatalf("Parse(compression %q) = %v", codec, err)
		}
		if c.Collect.Compression != codec || c.Collect.CPUs != 2 {
			t.Errorf("Parse(compression %q, cpus 2) = %q, %d", codec, c.Collect.Compression, c.Collect.CPUs)
		}
	}
}
