#!/usr/bin/env bash
# mk.sh writes this directory's PV images with the real lvm2 tools (see
# README.md): loop devices over sparse files, lvm2 with activation off (this
# host's kernel has no device-mapper, and nothing here needs it), then the
# head of each image (label and metadata area, plus the start of the data
# area where a file system was put) compressed. Run as root with lvm2 and
# e2fsprogs installed: bash mk.sh. It writes only into this directory, a
# temporary one and the loop devices it attaches.
set -euo pipefail
cd "$(dirname "$0")"
out=$PWD
tmp=$(mktemp -d)
loops=()
cleanup() {
  for l in "${loops[@]}"; do losetup -d "$l" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# An lvm.conf of our own: no activation (no device-mapper), no backup or
# archive files in /etc/lvm, and only our loop devices are scanned.
export LVM_SYSTEM_DIR=$tmp/etc LVM_SUPPRESS_FD_WARNINGS=1
mkdir -p "$LVM_SYSTEM_DIR"
conf() {
  local accept=
  for l in "${loops[@]}"; do accept+="\"a|^$l\$|\", "; done
  cat >"$LVM_SYSTEM_DIR/lvm.conf" <<CONF
global { activation = 0 }
backup { backup = 0 archive = 0 }
devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 global_filter = [ $accept"r|.*|" ] }
activation { udev_sync = 0 udev_rules = 0 }
CONF
}
lvm() { command lvm "$@" 2> >(grep -v 'WARNING: \(Activation disabled\|This metadata update is NOT backed up\|Logical volume .* not zeroed\)' >&2); }

# pv NAME SIZE: a sparse file and a loop device over it, in $dev[NAME].
declare -A dev
pv() {
  truncate -s "$2" "$tmp/$1.img"
  dev[$1]=$(losetup --find --show "$tmp/$1.img")
  loops+=("${dev[$1]}")
  conf
}

# keep NAME BYTES: the first BYTES of the image, gzipped, and its size.
keep() {
  head -c "$2" "$tmp/$1.img" | gzip -9n >"$out/$1.img.gz"
  printf '%s %s\n' "$1" "$(stat -c %s "$tmp/$1.img")" >>"$out/sizes"
}

# truth VG: what lvm2 itself says of the VG's LVs, segment by segment.
truth() {
  lvm lvs -a --segments --noheadings --separator ' ' --units s --nosuffix \
    -o lv_name,segtype,seg_start_pe,seg_size_pe,stripes,stripe_size,seg_pe_ranges "$1" |
    sed 's/^ *//' >"$tmp/lvs"
  # Device names are this run's: name each PV by its image instead.
  for n in "${!dev[@]}"; do sed -i "s|${dev[$n]}:|$n:|g" "$tmp/lvs"; done
  mv "$tmp/lvs" "$out/$1.lvs"
}

rm -f "$out"/*.img.gz "$out"/*.lvs "$out/sizes"

# 1. linear: VG my-vg on one PV, LVs root (ext4, LABEL=dumps) and swap.
pv linear 64M
lvm pvcreate -q "${dev[linear]}"
lvm vgcreate -q my-vg "${dev[linear]}"
lvm lvcreate -q -an -Zn -L 16M -n root my-vg
lvm lvcreate -q -an -Zn -L 8M -n swap my-vg
# The file system written where root's first extent is (pe_start, 1 MiB).
truncate -s 16M "$tmp/fs.img"
mkfs.ext4 -q -F -L dumps -U 5a3e8c3c-7a1f-4d0e-9c1b-2f6d6c0e9a11 "$tmp/fs.img"
dd if="$tmp/fs.img" of="${dev[linear]}" bs=1M seek=1 conv=notrunc,fsync status=none
truth my-vg
keep linear $((1024 * 1024 + 64 * 1024))

# 2. two PVs: stripes (2 stripes of 64 KiB) and span (linear, on both).
pv stripeA 64M
pv stripeB 48M
lvm pvcreate -q "${dev[stripeA]}"
lvm pvcreate -q --pvmetadatacopies 2 "${dev[stripeB]}"
lvm vgcreate -q vg1 "${dev[stripeA]}" "${dev[stripeB]}"
lvm lvcreate -q -an -Zn -i 2 -I 64k -L 24M -n stripes vg1
lvm lvcreate -q -an -Zn -l 20 -n span vg1
truth vg1
keep stripeA $((1024 * 1024))
keep stripeB $((1024 * 1024))
# stripeB's second metadata area is at its end.
tail -c $((1024 * 1024)) "$tmp/stripeB.img" | gzip -9n >"$out/stripeB.tail.gz"

# lvm2 cannot create thin pools, snapshots or RAID without device-mapper,
# but vgcfgrestore writes whatever valid metadata it is given. edit VG turns
# the VG's current metadata (vgcfgbackup) into $tmp/VG.vg with the LVs of
# $tmp/extra added, after renaming LVs: edit VG OLD=NEW... (a renamed LV
# becomes hidden, as the components of a pool or a RAID LV are).
edit() {
  local vg=$1
  shift
  lvm vgcfgbackup -q -f "$tmp/$vg.orig" "$vg"
  [ "$(tail -n 3 "$tmp/$vg.orig" | tr '\t\n' 'TN')" = "T}NN}N" ] || { echo "mk.sh: $vg: backup does not end with logical_volumes" >&2; exit 1; }
  local sedx=()
  for r in "$@"; do sedx+=(-e "s/^\t\t${r%=*} {/\t\t${r#*=} { # hidden/"); done
  sed "${sedx[@]}" "$tmp/$vg.orig" |
    awk '/# hidden$/ { sub(/ # hidden$/, ""); h = 1 } h && /status = / { sub(/, "VISIBLE"/, "") } /^\t\t}/ { h = 0 } { print }' |
    head -n -3 >"$tmp/$vg.vg"
  cat "$tmp/extra" >>"$tmp/$vg.vg"
  printf '\t}\n\n}\n' >>"$tmp/$vg.vg"
}

# 3. refused: VG vgthin on two PVs with a plain LV (the one that can be
# assembled), a thin pool and a thin LV, an old-style snapshot (origin and
# snap, the COW store), a raid1 LV and a cache pool.
pv thinA 64M
pv thinB 64M
lvm pvcreate -q "${dev[thinA]}" "${dev[thinB]}"
lvm vgcreate -q vgthin "${dev[thinA]}" "${dev[thinB]}"
lvm lvcreate -q -an -Zn -L 8M -n plain vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 8M -n tdata vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 4M -n tmeta vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 8M -n origin vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 4M -n snap vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 4M -n rmeta0 vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 4M -n rimage0 vgthin "${dev[thinA]}"
lvm lvcreate -q -an -Zn -L 4M -n rmeta1 vgthin "${dev[thinB]}"
lvm lvcreate -q -an -Zn -L 4M -n rimage1 vgthin "${dev[thinB]}"
lvm lvcreate -q -an --type cache-pool -L 8M -n cpool vgthin "${dev[thinB]}"
cat >"$tmp/extra" <<'LVS'

		pool {
			id = "mkshPo-ol00-0000-0000-0000-0000-000000"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796166060
			creation_host = "mk.sh"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 2
				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 1
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1
			}
		}

		thin {
			id = "mkshTh-in00-0000-0000-0000-0000-000000"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796166060
			creation_host = "mk.sh"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 8
				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 1
			}
		}

		snapshot0 {
			id = "mkshSn-ap00-0000-0000-0000-0000-000000"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796166060
			creation_host = "mk.sh"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 2
				type = "snapshot"
				chunk_size = 8
				origin = "origin"
				cow_store = "snap"
			}
		}

		mirrored {
			id = "mkshRa-id00-0000-0000-0000-0000-000000"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796166060
			creation_host = "mk.sh"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 1
				type = "raid1"
				device_count = 2
				region_size = 1024
				raids = [
					"mirrored_rmeta_0", "mirrored_rimage_0",
					"mirrored_rmeta_1", "mirrored_rimage_1"
				]
			}
		}
LVS
edit vgthin tdata=pool_tdata tmeta=pool_tmeta rmeta0=mirrored_rmeta_0 rimage0=mirrored_rimage_0 \
  rmeta1=mirrored_rmeta_1 rimage1=mirrored_rimage_1
# --force: vgcfgrestore asks before it restores a VG with thin pools. It
# says it cannot reach device-mapper (to check no pool is active): true.
lvm vgcfgrestore -q --force -f "$tmp/vgthin.vg" vgthin 2>&1 | grep -v 'device-mapper\|/dev/mapper/control\|libdevmapper' || true
truth vgthin
keep thinA $((1024 * 1024))
keep thinB $((1024 * 1024))

# 4. a wrapped ring buffer: VG vgwrap on a PV with a 60 KiB metadata area
# (--metadatasize 16k, data aligned to 64 KiB), LV keep, then LV tmp made
# and removed until the newest metadata runs past the end of the area and
# goes on after its header.
pv wrap 16M
lvm pvcreate -q --metadatasize 16k --dataalignment 64k "${dev[wrap]}"
lvm vgcreate -q -s 1m vgwrap "${dev[wrap]}"
lvm lvcreate -q -an -Zn -L 2M -n keep vgwrap
# mda OFFSET SIZE: the area's size and the newest metadata's place.
mda() { od -An -t u8 -j $((4096 + 32)) -N 8 "$tmp/wrap.img"; od -An -t u8 -j $((4096 + 40)) -N 16 "$tmp/wrap.img"; }
n=0
while :; do
  read -r size off len <<<"$(mda | tr "\n" " ")"
  [ $((off + len)) -gt "$size" ] && break
  n=$((n + 1))
  [ $n -le 200 ] || { echo "mk.sh: the metadata of vgwrap never wrapped" >&2; exit 1; }
  if [ $((n % 2)) -eq 1 ]; then lvm lvcreate -q -an -Zn -L 1M -n tmp vgwrap; else lvm lvremove -q -y vgwrap/tmp; fi
done
echo "mk.sh: vgwrap wrapped after $n updates: metadata at $off, $len bytes, in an area of $size" >&2
truth vgwrap
keep wrap $((64 * 1024))
