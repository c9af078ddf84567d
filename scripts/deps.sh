#!/usr/bin/env bash
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
  kmod util-linux          # modinfo, unshare
  time bc                  # /usr/bin/time -v and arithmetic for benchmarks
  binutils                 # readelf checks the saved core
  python3 python3-libkdumpfile  # an independent reader of kdump-compressed files (interop tests)
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

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null 2>&1 || { echo "deps.sh: Go 1.26 is required (https://go.dev/doc/install)" >&2; exit 1; }
echo "deps.sh: ok"
