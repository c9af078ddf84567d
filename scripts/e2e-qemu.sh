#!/usr/bin/env bash
# e2e-qemu.sh: a real kernel panics in QEMU, ukdump captures it to a disk, and
# independent tools read the dump.
#
# Stage 1 boots Debian's kernel with crashkernel= and a tiny initramfs whose
# init runs our `ukdump load` and then crashes the kernel with sysrq. Stage 2 is
# our capture image saving the dump to a second virtio disk (ext4, labelled
# crashdump). The host reads the disk with debugfs (no mount) and checks it.
#
# TARGET=disk (default) saves to the disk; TARGET=sftp saves over SFTP to an
# OpenSSH server the script starts in QEMU's own network namespace (the guest
# reaches it as 10.0.2.2); TARGET=fallback tries an SFTP port where nothing
# listens first, then the disk.
# Environment: FORMAT (elf: a full ELF core, default; kdump: kdump-compressed
# with COMPRESS, default zlib, at the default dump level 31), MEM (guest RAM, default 1G), CRASHKERNEL (default 96M),
# RUNS (default 1), DEMO=1 (print the dump for a person), KEEP=1 (keep files),
# TIMEOUT (seconds per run, default 600), OUTDIR (default out/e2e), QEMU_CPU (default max),
# FILL (MiB of mixed content stage 1 writes to memory before the crash),
# FORCE=1 (ukdump load --force: to find the crashkernel= floor).
#
# SCENARIO=save (default) expects the dump saved. Two fault scenarios check
# what a capture that cannot finish leaves behind:
# SCENARIO=kill: the capture dies abruptly (as if OOM-killed) once the dump
# file has received KILL_AFTER bytes (default 10 MiB, well inside the ~30 MB
# -d 31 zlib dump of a 1 GiB guest), after syncing them: the test-only word
# ukdump.e2e.kill_after= on stage 1's command line reaches the capture kernel's
# (ukdump load keeps ukdump.* words). The disk must hold vmcore.incomplete and
# no vmcore, marked incomplete (kdump header status; ELF e_flags bit 0), and
# crash must still open it.
# SCENARIO=enospc: the disk (DISK_SIZE, default 96M) is far smaller than the
# dump (kdump with COMPRESS=none and exclude none: ~1 GiB), retention.min_free
# is 0 so the capture starts: it must fail with "no space left on device",
# leave vmcore.incomplete marked incomplete and a manifest saying so, try the
# second target (a disk that is not there), and take the failure action
# (poweroff).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${TARGET:-disk}
SCENARIO=${SCENARIO:-save}
KILL_AFTER=${KILL_AFTER:-10485760}
FORMAT=${FORMAT:-elf}
COMPRESS=${COMPRESS:-zlib}
MEM=${MEM:-1G}
CRASHKERNEL=${CRASHKERNEL:-96M}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-600}
QEMU_CPU=${QEMU_CPU:-max}   # TCG emulates SHA-NI etc.: the sha256 of the dump is ~40% faster than with qemu64
OUTDIR=${OUTDIR:-out/e2e}
mkdir -p "$OUTDIR"
OUTDIR=$(realpath "$OUTDIR")

say() { printf 'e2e: %s\n' "$*"; }
die() { say "FAIL: $*"; exit 1; }

# KERNEL (6.1 or 6.12) is the kernel that crashes; CAPTURE_KERNEL (default:
# the same) is the capture kernel, whose modules go into the image.
newest() { ls -1 /boot/vmlinuz-"$1".*-amd64 2>/dev/null | grep -v -- '-cloud-\|-rt-' | sort -V | tail -n1 || true; }
kernel=$(newest "${KERNEL:-6.1}")
[ -n "$kernel" ] || die "no /boot/vmlinuz-${KERNEL:-6.1}.*-amd64: run scripts/deps.sh (installs Debian's 6.1 and 6.12 kernels)"
kver=${kernel#/boot/vmlinuz-}
ckernel=$(newest "${CAPTURE_KERNEL:-${KERNEL:-6.1}}")
[ -n "$ckernel" ] || die "no /boot/vmlinuz-${CAPTURE_KERNEL}.*-amd64: run scripts/deps.sh"
ckver=${ckernel#/boot/vmlinuz-}
for t in qemu-system-x86_64 debugfs e2fsck mkfs.ext4 makedumpfile crash readelf cpio unshare; do
  command -v "$t" >/dev/null || die "$t is missing: run scripts/deps.sh"
done

# The capture image, built by the same command a user runs.
if [ "$FORMAT" = elf ]; then
  collect='format = "elf"
exclude = ["none"]'
elif [ "$SCENARIO" = enospc ]; then
  COMPRESS=none
  collect='format = "kdump"
compression = "none"
exclude = ["none"]' # ~1 GiB, whatever the guest does
else
  collect="format = \"$FORMAT\"
compression = \"$COMPRESS\"" # and the default exclusion: -d 31
fi
disk_target='[[target]]
device = "LABEL=crashdump"
path = "/var/crash"
wait_device = "60s"'
sshdir="$OUTDIR/ssh"
sftp_target() { # port
  printf '[[target]]\nurl = "sftp://root@10.0.2.2:%s%s/crash"\nidentity = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' \
    "$1" "$sshdir" "$sshdir" "$sshdir"
}
if [ "$TARGET" != disk ]; then
  # The test's own sshd: its host key, our client key, and a known_hosts
  # pinning the host key under the address the guest uses.
  rm -rf "$sshdir" && mkdir -p "$sshdir/crash" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$sshdir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$sshdir/id_ed25519"
  cp "$sshdir/id_ed25519.pub" "$sshdir/authorized_keys"
  for port in 2222 2223; do # 2223: the fallback run's port where nothing listens
    printf '[10.0.2.2]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$sshdir/host_key.pub")"
  done > "$sshdir/known_hosts"
  cat > "$sshdir/sshd_config" <<SSHD
Port 2222
ListenAddress 127.0.0.1
HostKey $sshdir/host_key
AuthorizedKeysFile $sshdir/authorized_keys
PidFile $sshdir/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
SSHD
fi
case $TARGET in
  disk) targets=$disk_target ;;
  sftp) targets=$(sftp_target 2222) ;;
  fallback) targets="$(sftp_target 2223)
$disk_target" ;;
  *) die "TARGET=$TARGET: want disk, sftp or fallback" ;;
esac
failure=reboot retention= s1_append= disk_size=4G
case $SCENARIO in
  save) ;;
  kill) s1_append=" ukdump.e2e.kill_after=$KILL_AFTER" ;;
  enospc)
    [ "$TARGET" = disk ] || die "SCENARIO=enospc needs TARGET=disk"
    [ "$FORMAT" = kdump ] || die "SCENARIO=enospc needs FORMAT=kdump (an ELF core is refused by the free-space check first)"
    disk_size=${DISK_SIZE:-96M}
    targets="$targets
[[target]]
device = \"LABEL=nothere\"
wait_device = \"2s\""
    failure=poweroff
    retention='[retention]
min_free = "0"' ;;
  *) die "SCENARIO=$SCENARIO: want save, kill or enospc" ;;
esac
cat > "$OUTDIR/ukdump.toml" <<TOML
[collect]
$collect

$targets

[action]
final = "reboot"
failure = "$failure"
deadline = "10m"

$retention
TOML
SOURCE_DATE_EPOCH=0 out/ukdump build -c "$OUTDIR/ukdump.toml" -o "$OUTDIR/capture.img" --kver "$ckver" | tee "$OUTDIR/build.txt"

# Stage 1's initramfs: its init, ukdump, the kernel and the capture image.
s1="$OUTDIR/stage1"
rm -rf "$s1" && mkdir -p "$s1/boot" "$s1/proc" "$s1/sys" "$s1/dev"
cp out/stage1-init "$s1/init"
cp out/ukdump "$s1/ukdump"
cp "$ckernel" "$s1/boot/vmlinuz"
cp "$OUTDIR/capture.img" "$s1/capture.img"
(cd "$s1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$OUTDIR/stage1.cpio"

# check_partial DIR: the checks of a dump that could not be finished (the
# fault scenarios): no vmcore, a vmcore.incomplete that says it is
# incomplete and that crash still opens.
check_partial() {
  local d=$1
  if debugfs -R "stat /var/crash/$dirname/vmcore" "$disk" 2>/dev/null | grep -q '^Inode:'; then
    problems+=("/var/crash/$dirname/vmcore exists: the unfinished dump was renamed")
  fi
  [ -s "$d/vmcore.incomplete" ] || return 0
  out/ukdump info --json "$d/vmcore.incomplete" > "$d/info.json" 2> "$d/info.err" || true
  grep -q "\"format\": \"$FORMAT\"" "$d/info.json" || problems+=("ukdump info does not see a $FORMAT file ($d/info.json)")
  grep -q '"complete": false' "$d/info.json" || problems+=("ukdump info does not say the dump is incomplete ($d/info.json)")
  if [ "$FORMAT" = kdump ]; then # disk_dump_header.status, at 424
    st=$(od -An -tu4 -j 424 -N 4 "$d/vmcore.incomplete" | tr -d ' ')
    [ $((${st:-0} & 8)) -ne 0 ] || problems+=("the kdump header's status is ${st:-?}, without DUMP_DH_COMPRESSED_INCOMPLETE (8)")
  else
    readelf -h "$d/vmcore.incomplete" > "$d/readelf.txt" 2>&1 || true
    grep -q 'Flags: *0x1$' "$d/readelf.txt" || problems+=("the ELF header's e_flags is not 0x1 (incomplete) ($d/readelf.txt)")
  fi
  rel=$(crash --osrelease "$d/vmcore.incomplete" 2>&1 | tail -n1)
  [ "$rel" = "$kver" ] || problems+=("crash --osrelease on vmcore.incomplete printed '$rel', want $kver")
  # The capture wrote manifest.json and ukdump.log before the dump (padded,
  # to keep their room): killed, they say it stopped; out of space, they are
  # replaced with what happened.
  grep -q '"complete": false' "$d/manifest.json" 2>/dev/null || problems+=("manifest.json does not say \"complete\": false")
  grep -q '"file": "vmcore.incomplete"' "$d/manifest.json" 2>/dev/null || problems+=("manifest.json does not name vmcore.incomplete")
  grep -q 'saving to ' "$d/ukdump.log" 2>/dev/null || problems+=("ukdump.log does not hold the capture's log")
  if [ "$SCENARIO" = enospc ]; then
    grep -q '"error": ".*no space left on device' "$d/manifest.json" 2>/dev/null || problems+=("manifest.json's error is not 'no space left on device'")
    grep -q 'copy failed after' "$d/ukdump.log" 2>/dev/null || problems+=("ukdump.log does not say the copy failed")
  else
    grep -q '"error": "the capture stopped while writing the dump' "$d/manifest.json" 2>/dev/null || problems+=("manifest.json of the killed capture does not say it stopped mid-dump")
  fi
}

pass=0 fail=0
for run in $(seq 1 "$RUNS"); do
  disk="$OUTDIR/disk.img"
  rm -f "$disk"
  truncate -s "$disk_size" "$disk"
  mkfs.ext4 -q -F -L crashdump "$disk"
  log="$OUTDIR/serial-$run.log"
  say "run $run/$RUNS: $MEM guest, crashkernel=$CRASHKERNEL, kernel $kver (capture kernel $ckver), format $FORMAT, scenario $SCENARIO"
  rm -rf "${sshdir:?}/crash" && mkdir -p "$sshdir/crash"
  nic="-nic none"
  [ "$TARGET" = disk ] || nic="-nic user,model=virtio-net-pci"
  # QEMU runs in its own network namespace: with user networking the guest
  # reaches only that namespace's loopback (10.0.2.2 is its 127.0.0.1), where
  # the test's sshd listens. Each console line gets the host's clock, to time
  # panic → saved.
  export kernel disk log nic MEM CRASHKERNEL QEMU_CPU FILL FORCE OUTDIR TARGET sshdir s1_append
  timeout --foreground "$TIMEOUT" unshare -n bash -c '
    ip link set lo up
    if [ "$TARGET" != disk ]; then /usr/sbin/sshd -f "$sshdir/sshd_config" -E "$sshdir/sshd.log"; fi
    qemu-system-x86_64 -accel tcg -cpu "$QEMU_CPU" -m "$MEM" -smp 1 -no-reboot \
      -display none -monitor none -serial stdio $nic \
      -kernel "$kernel" -initrd "$OUTDIR/stage1.cpio" \
      -append "console=ttyS0 crashkernel=$CRASHKERNEL panic=-1 loglevel=6${FILL:+ ukdump.e2e.fill=$FILL}${FORCE:+ ukdump.e2e.force=1}$s1_append" \
      -drive "file=$disk,format=raw,if=virtio" </dev/null 2>&1
    [ -f "$sshdir/sshd.pid" ] && kill "$(cat "$sshdir/sshd.pid")" 2>/dev/null
    true' |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"; done > "$log" || true

  problems=()
  files="vmcore vmcore-dmesg.txt manifest.json ukdump.log"
  case $SCENARIO in
    save) grep -q 'ukdump: result=saved' "$log" || problems+=("no 'ukdump: result=saved' line on the console ($log)") ;;
    kill)
      files="vmcore.incomplete vmcore-dmesg.txt manifest.json ukdump.log"
      grep -q "ukdump: ukdump.e2e.kill_after: $KILL_AFTER bytes written; dying now" "$log" ||
        problems+=("the capture did not die after $KILL_AFTER bytes ($log)")
      grep -q 'Kernel panic - not syncing: Attempted to kill init' "$log" || problems+=("no 'Attempted to kill init' panic ($log)")
      if grep -q 'ukdump: result=' "$log"; then problems+=("the killed capture printed a result line ($log)"); fi ;;
    enospc)
      files="vmcore.incomplete vmcore-dmesg.txt manifest.json ukdump.log"
      grep -q 'ukdump: target 0 failed: .*no space left on device' "$log" ||
        problems+=("no 'target 0 failed: … no space left on device' on the console ($log)")
      grep -q 'ukdump: target 1 failed' "$log" || problems+=("the second target was not tried ($log)")
      grep -q 'ukdump: result=failed .*action=poweroff' "$log" ||
        problems+=("no final 'ukdump: result=failed … action=poweroff' line ($log)") ;;
  esac
  if [ "$TARGET" = fallback ]; then
    grep -q 'ukdump: target 0 failed' "$log" || problems+=("the unreachable sftp target did not fail first ($log)")
  fi
  d="$OUTDIR/dump"
  rm -rf "$d" && mkdir -p "$d"
  if [ "$SCENARIO" = kill ]; then
    # The capture died with the disk mounted: what it synced is in the
    # journal. Replay it, as the next mount would (debugfs does not).
    rc=0
    e2fsck -E journal_only -p "$disk" > "$OUTDIR/e2fsck.txt" 2>&1 || rc=$?
    [ "$rc" -le 1 ] || problems+=("e2fsck -E journal_only failed with status $rc ($OUTDIR/e2fsck.txt)")
  fi
  if [ "$TARGET" = sftp ]; then
    where="the sftp server's $sshdir/crash"
    dirname=$(ls "$sshdir/crash" | grep -E -- '-[0-9]+T[0-9]+Z' | head -n1 || true)
  else
    where="/var/crash on the disk"
    dirname=$(debugfs -R 'ls -p /var/crash' "$disk" 2>/dev/null | awk -F/ '$6 ~ /-[0-9]+T[0-9]+Z/ {print $6}' | head -n1)
  fi
  if [ -z "$dirname" ]; then
    problems+=("no dump directory in $where")
  else
    for f in $files; do
      if [ "$TARGET" = sftp ]; then
        cp "$sshdir/crash/$dirname/$f" "$d/$f" 2>/dev/null || true
      else
        debugfs -R "dump /var/crash/$dirname/$f $d/$f" "$disk" >/dev/null 2>&1 || true
      fi
      [ -s "$d/$f" ] || problems+=("$f missing from $where/$dirname")
    done
    if [ "$SCENARIO" != save ]; then
      check_partial "$d"
    elif [ -s "$d/vmcore" ] && [ -s "$d/manifest.json" ]; then
      want=$(sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$d/manifest.json")
      got=$(sha256sum "$d/vmcore" | cut -d' ' -f1)
      [ "$want" = "$got" ] || problems+=("sha256 mismatch: manifest $want, vmcore $got")
      if [ "$FORMAT" = elf ]; then
        # (no `readelf | grep -q`: with pipefail, grep's early exit fails readelf)
        readelf -h -n "$d/vmcore" > "$d/readelf.txt" 2>&1 || true
        grep -q 'CORE (Core file)' "$d/readelf.txt" || problems+=("vmcore is not an ELF core ($d/readelf.txt)")
        grep -q VMCOREINFO "$d/readelf.txt" || problems+=("vmcore has no VMCOREINFO note ($d/readelf.txt)")
      else
        if [ "$TARGET" = sftp ]; then # a stream: the capture sent it flattened
          out/ukdump reassemble "$d/vmcore" "$d/vmcore.kdump" 2>/dev/null && mv "$d/vmcore.kdump" "$d/vmcore" ||
            problems+=("ukdump reassemble failed on the flattened dump")
        fi
        out/ukdump info --json "$d/vmcore" > "$d/info.json" 2>&1 || true
        grep -q '"format": "kdump"' "$d/info.json" || problems+=("ukdump info does not see a kdump file ($d/info.json)")
        grep -q '"complete": true' "$d/info.json" || problems+=("ukdump info: the dump is not complete ($d/info.json)")
        grep -q "\"codec\": \"$COMPRESS\"" "$d/info.json" || problems+=("ukdump info: codec is not $COMPRESS ($d/info.json)")
      fi
      grep -q 'sysrq triggered crash' "$d/vmcore-dmesg.txt" 2>/dev/null || problems+=("vmcore-dmesg.txt does not have 'sysrq triggered crash'")
      rm -f "$d/dmesg.txt"
      makedumpfile --dump-dmesg "$d/vmcore" "$d/dmesg.txt" >"$d/makedumpfile.out" 2>&1 || true
      grep -q 'sysrq triggered crash' "$d/dmesg.txt" 2>/dev/null || problems+=("makedumpfile --dump-dmesg does not find 'sysrq triggered crash' ($d/makedumpfile.out)")
      rel=$(crash --osrelease "$d/vmcore" 2>&1 | tail -n1)
      [ "$rel" = "$kver" ] || problems+=("crash --osrelease printed '$rel', want $kver")
    fi
  fi
  t_crash=$(grep -m1 'sysrq: Trigger a crash' "$log" | cut -d' ' -f1 || true)
  t_saved=$(grep -m1 'ukdump: result=saved' "$log" | cut -d' ' -f1 || true)
  if [ ${#problems[@]} -eq 0 ] && [ "$SCENARIO" != save ]; then
    pass=$((pass + 1))
    say "run $run: PASS: $SCENARIO: vmcore.incomplete $(stat -c %s "$d/vmcore.incomplete") bytes, marked incomplete, read by crash ($FORMAT)"
  elif [ ${#problems[@]} -eq 0 ]; then
    pass=$((pass + 1))
    secs=$(awk -v a="$t_crash" -v b="$t_saved" 'BEGIN { if (a && b) printf "%.1f", b - a; else print "?" }')
    rate=$(sed -n 's/.*"mb_per_second": \([0-9.]*\).*/\1/p' "$OUTDIR/dump/manifest.json")
    say "run $run: PASS: panic → dump saved in ${secs}s; ${rate} MB/s of memory; vmcore $(stat -c %s "$OUTDIR/dump/vmcore") bytes ($FORMAT, $TARGET)"
  else
    fail=$((fail + 1))
    for p in "${problems[@]}"; do say "run $run: FAIL: $p"; done
    say "last console lines:"; tail -n 25 "$log" | cut -d' ' -f2- | sed 's/^/  | /'
  fi
done

if [ "${DEMO:-}" = 1 ] && [ "$pass" -gt 0 ]; then
  d="$OUTDIR/dump"
  echo
  echo "== The dump: /var/crash/$dirname on the crashdump disk (copied to $d) =="
  ls -l "$d"
  echo
  echo "== manifest.json (summary) =="
  python3 - "$d/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
p = m.get("pages", {})
print(f"  kernel      {m['kernel_release']} on host {m['host']}, crashed {m['crash_time']}")
print(f"  dump        {m['file']}: {m['format']}, {m['compression']}, dump level {m['dump_level']}, {m['size']:,} bytes, complete: {m['complete']}")
print(f"  pages       {p.get('dumped', 0):,} of {p.get('total', 0):,} in the dump ({p.get('zero', 0):,} zero)")
print(f"  sha256      {m['sha256']}")
print(f"  source      {m['source']}, {m['memory_bytes']:,} bytes of memory, {m['cpus']} CPU(s)")
d = m["durations_seconds"]
print(f"  took        {d['total']:.1f}s in the capture kernel (modules {d['modules']:.1f}s, disk {d['target_open']:.1f}s, dump {d['copy']:.1f}s at {m['mb_per_second']:.0f} MB/s)")
print(f"  target      {m['target']}, ukdump {m['ukdump_version']}")
PY
  echo
  echo "== The crashed kernel's last 20 log lines (vmcore-dmesg.txt, saved by the capture) =="
  tail -n 20 "$d/vmcore-dmesg.txt"
fi

say "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
