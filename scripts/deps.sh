#!/usr/bin/env bash
# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.
# deps.sh installs what ukdump's build, demo and tests need on a Debian 12 machine.
# It is idempotent: packages already present are left alone.
set -euo pipefail

pkgs=(
  make ca-certificates
  qemu-system-x86          # the e2e and demo run kernels under QEMU (TCG)
  linux-image-amd64        # the kernel that crashes and the capture kernel
  e2fsprogs                # mkfs.ext4 and debugfs for the dump disk
  makedumpfile crash       # independent readers of the dump (test oracles)
  cpio zstd xz-utils       # inspecting images by hand
  openssh-server openssh-client  # the sftp target tests
  kmod util-linux iproute2 # modinfo, unshare, ip (network namespaces in the tests)
  time bc                  # /usr/bin/time -v and arithmetic for benchmarks
  gcc libc6-dev            # make bench compiles scripts/codecs.c: makedumpfile's liblzo2 and zlib timed beside our codecs
  binutils                 # readelf checks the saved core
  python3 python3-libkdumpfile  # an independent reader of kdump-compressed files (interop tests)
  debootstrap              # the Debian 12 guest root file system (integration/guest)
  fdisk                    # sfdisk: the guest disk's GPT, written into an image file
  lintian                  # checks the ukdump .deb
  lvm2                     # internal/lvm/testdata/mk.sh writes the LVM2 test data with it
  xfsprogs btrfs-progs     # the XFS and btrfs dump disks of the installed-system scenarios
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# A second kernel for the e2e: Debian 12's 6.12 (same apt sources), so a
# crash of one version can be captured by the other.
if ! ls /boot/vmlinuz-6.12.*-amd64 >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "deps.sh: need root to install a 6.12 kernel" >&2; exit 1; }
  k612=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64(-unsigned)?$' | cut -d' ' -f1 | sort -V | tail -n1)
  if [ -z "$k612" ]; then
    apt-get update -q
    k612=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64(-unsigned)?$' | cut -d' ' -f1 | sort -V | tail -n1)
  fi
  [ -n "$k612" ] || { echo "deps.sh: no linux-image-6.12.*+deb12-amd64 in the apt sources" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$k612"
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || { echo "deps.sh: Go 1.26 is required (https://go.dev/doc/install)" >&2; exit 1; }

# versitygw, the S3-compatible server the S3 target's tests run on loopback
# (Debian 12 has none that is usable; MinIO's server is AGPL): built once
# (~2 min) into the test cache, outside the repository, where
# internal/target/s3/s3test finds it.
cache=${UKDUMP_TEST_CACHE:-/var/cache/ukdump-test}
vgw_version=v1.8.0
if ! [ -x "$cache/bin/versitygw" ] || ! grep -qx "$vgw_version" "$cache/bin/versitygw.version" 2>/dev/null; then
  mkdir -p "$cache/bin"
  echo "deps.sh: building versitygw $vgw_version into $cache/bin (about 2 minutes)"
  (cd / && GOBIN="$cache/bin" GOFLAGS= CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$vgw_version")
  echo "$vgw_version" > "$cache/bin/versitygw.version"
fi
echo "deps.sh: ok"
