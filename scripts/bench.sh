#!/usr/bin/env bash
# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.
# bench.sh prints the figures the project is judged by; it is not a test.
#  1. Big machines in QEMU (TCG): crash → saved, the capture's memory at its
#     start and after the dump, and its peak RSS, for guests of 1, 16, 64 and
#     256 GiB at crashkernel=96M with the default codec on one capture CPU, and
#     the 64 GiB guest with each codec and with two capture CPUs
#     (integration/cmd/crashvm, checked as the e2e test checks). Beside them,
#     Debian 12's kdump-tools on the same machines, in the same QEMU, at
#     crashkernel=128M (its floor is 116M): an installed Debian 12 guest that
#     crashes, boots its root and systemd in the capture kernel and runs
#     makedumpfile -F -c -d 31 (integration/cmd/kdumptools, which checks the
#     dump with makedumpfile -R and --dump-dmesg).
#  2. Reliability: RUNS (default 5) captures of a 1 GiB guest at 96M.
#  3. The collector against makedumpfile on the host, side by side on one
#     2 GiB vmcore of a guest whose memory was filled with mixed content: per
#     codec and dump level, on one pinned CPU (taskset -c 0) and on two, the
#     best and median wall time of REPS (default 5) runs interleaved, and the
#     output size. Output goes to a tmpfs, so the disk's writeback does not
#     blur the codecs' cost.
#  4. The codecs alone, page by page on one pinned CPU, beside the libraries
#     makedumpfile calls (liblzo2's lzo1x_1_compress for -l, zlib's compress2
#     at level 1 for -c, compiled from scripts/codecs.c against the system's
#     libraries): on the pages of that vmcore at dump levels 31 and 1, and on
#     the 64 GiB guest's dump of section 1 (a big machine's struct pages) if
#     it is there (integration/cmd/codecbench).
# SECTIONS (default "qemu runs host codecs") picks the sections; SIZES the
# guests of section 1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
REPS=${REPS:-5}
SECTIONS=${SECTIONS:-qemu runs host codecs}
SIZES=${SIZES:-1G 16G 64G 256G}
say() { printf 'bench: %s\n' "$*"; }
crashvm() { "${GO:-go}" run ./integration/cmd/crashvm "$@"; }
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

# capture NAME ARGS...: one crashvm run; prints "NAME secs start_kB after_kB rss_kB size_MiB" or "NAME failed".
capture() {
  local name=$1; shift
  local out=out/bench-$name
  if ! crashvm -out "$out" "$@" > "$out.txt" 2>&1; then
    echo "$name failed ($out.txt)"
    return
  fi
  awk -v name="$name" '
    /panic → dump saved in/ { for (i = 1; i <= NF; i++) if ($i == "in") { s = $(i + 1); sub(/s;$/, "", s) } }
    /ukdump: memory: / { for (i = 1; i <= NF; i++) if ($i == "kB" && !start) start = $(i - 1) }
    /memory after the dump/ { for (i = 1; i <= NF; i++) { if ($i == "dump:") after = $(i + 1); if ($i == "RSS") rss = $(i + 1) } }
    /ukdump: saved [0-9.]+ [KMG]iB/ { for (i = 1; i <= NF; i++) if ($i == "saved") size = $(i + 1) " " $(i + 2) }
    END { printf "%s %s %s %s %s %s\n", name, s, start, after, rss, size }' "$out.txt" "$out/serial-1.log"
}

if want qemu; then
  results=out/bench-qemu.txt
  : > "$results"
  for mem in $SIZES; do
    capture "$mem" -mem "$mem" -crashkernel 96M -compress "" >> "$results"
  done
  for codec in lzo snappy zstd zlib; do # the default among them: a second run of it
    capture "64G-$codec" -mem 64G -crashkernel 96M -compress "$codec" >> "$results"
  done
  # Two capture CPUs cost 1.5 MiB more than ukdump load's 96M allows
  # (kexec.PerCaptureCPU): 112M, what the size check asks. The crash is on
  # CPU 0 of a 2-CPU guest: the capture kernel starts on the CPU that
  # crashed and leaves the boot CPU out only when it is another
  # (disable_cpu_apicid=), and a third guest CPU would oversubscribe this
  # 2-core host.
  for mem in 64G 256G; do
    capture "$mem-2cpus" -mem "$mem" -crashkernel 112M -compress "" -smp 2 -crash-cpu0 -cpus 2 >> "$results"
  done
  echo
  printf '%-12s %14s %16s %16s %14s %14s\n' "guest" "crash→saved" "capture start" "after the dump" "peak RSS" "dump"
  while read -r name secs start after rss size; do
    printf '%-12s %12s s %13s kB %13s kB %11s kB %14s\n' "$name" "$secs" "$start" "$after" "$rss" "$size"
  done < "$results"
  # Debian 12's kdump-tools on the same sizes (one first boot makes its initrd).
  kt=out/bench-kdumptools.txt
  kt_sizes=$(echo "$SIZES" | tr ' ' ',')
  "${GO:-go}" run ./integration/cmd/kdumptools -out out/bench-kdumptools -mem "$kt_sizes" > "$kt" 2> out/bench-kdumptools.log || true
  echo
  say "side by side, crash → saved (ukdump at 96M, one capture CPU, its default codec; kdump-tools at 128M, makedumpfile -F -c -d 31, nr_cpus=1):"
  printf '%-8s %14s %16s %10s\n' "guest" "ukdump" "kdump-tools" "ratio"
  for mem in $SIZES; do
    u=$(awk -v n="$mem" '$1 == n { print $2 }' "$results")
    k=$(awk -v n="$mem:" '$2 == n && /vmcore saved in/ { for (i = 1; i <= NF; i++) if ($i == "in") { print $(i + 1); exit } }' "$kt")
    [[ $u =~ ^[0-9.]+$ ]] && u="$u s" || u=failed
    [[ $k =~ ^[0-9.]+$ ]] && k="$k s" || k=failed
    r=-
    if [[ $u != failed && $k != failed ]]; then r=$(printf '%.2fx' "$(echo "${u% s} / ${k% s}" | bc -l)"); fi
    printf '%-8s %14s %16s %10s\n' "$mem" "$u" "$k" "$r"
  done
  grep -v 'vmcore saved in' "$kt" || true
  echo
fi

if want runs; then
  crashvm -runs "$RUNS" -crashkernel "${CRASHKERNEL:-96M}" -out out/bench-runs |
    tee out/bench-runs.txt | grep -E '^e2e: (run [0-9]+: |[0-9]+ passed)' || true
  echo
fi

tmp=$(mktemp -d /dev/shm/ukdump-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A 2 GiB guest with 1.4 GiB of mixed content, captured as a full ELF core.
core=out/bench-2g/dump/vmcore
if want host || want codecs; then
  if [ ! -s "$core" ]; then
    crashvm -format elf -mem 2G -fill 1400 -crashkernel 128M -out out/bench-2g | tail -n 2
  fi
  [ -s "$core" ] || { say "no 2 GiB vmcore"; exit 1; }
fi

if want host; then
  say "vmcore: $core, $(stat -c %s "$core") bytes; $(nproc) CPUs; output to $tmp (tmpfs); best and median of $REPS"
  cat "$core" > /dev/null # the same warm page cache for every tool
  for level in 31 1; do
    tools=("makedumpfile -l|0|makedumpfile -l" "makedumpfile -c|0|makedumpfile -c")
    for codec in lzo snappy zstd zlib; do
      tools+=("ukdump $codec|0|out/ukdump collect -q --compress $codec" "ukdump $codec|0,1|out/ukdump collect -q --compress $codec")
    done
    : > "$tmp/times"
    for _ in $(seq "$REPS"); do # interleaved: a noisy neighbour hits every tool alike
      for t in "${tools[@]}"; do
        IFS='|' read -r name cpus cmd <<< "$t"
        rm -f "$tmp/out"
        s=$(date +%s.%N)
        # shellcheck disable=SC2086 # cmd is words
        taskset -c "$cpus" $cmd -d "$level" "$core" "$tmp/out" > /dev/null 2>&1 || { say "$name -d $level failed"; exit 1; }
        e=$(date +%s.%N)
        echo "$name|$cpus|$(echo "$e - $s" | bc)|$(stat -c %s "$tmp/out")" >> "$tmp/times"
      done
    done
    echo
    say "-d $level: ukdump collect against makedumpfile (Debian 12's reads zlib and LZO only)"
    printf '%-18s %5s %9s %9s %11s %14s %14s\n' "" "CPUs" "best (s)" "median" "output (MB)" "time vs -l" "size vs -l"
    python3 - "$tmp/times" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, cpus, t, size = line.strip().split("|")
    r = rows.setdefault((name, cpus), {"t": [], "size": int(size)})
    r["t"].append(float(t))
base = rows[("makedumpfile -l", "0")]
bt = statistics.median(base["t"])
for (name, cpus), r in rows.items():
    med = statistics.median(r["t"])
    print(f"{name:18} {len(cpus.split(',')):5} {min(r['t']):9.2f} {med:9.2f} {r['size'] / 1e6:11.1f} {med / bt:13.2f}x {r['size'] / base['size']:13.3f}x")
EOF
  done
fi

if want codecs; then
  echo
  gcc -O2 -o "$tmp/codecs" scripts/codecs.c -l:liblzo2.so.2 -l:libz.so.1
  "${GO:-go}" build -o "$tmp/codecbench" ./integration/cmd/codecbench
  dumps=() names=()
  for level in 31 1; do
    out/ukdump collect -q -f -d "$level" --compress none "$core" "$tmp/d$level.kdump"
    dumps+=("$tmp/d$level.kdump") names+=("$core at dump level $level")
  done
  if [ -s out/bench-64G/dump/vmcore ]; then
    dumps+=(out/bench-64G/dump/vmcore) names+=("the 64 GiB guest's dump (level 31)")
  fi
  for k in "${!dumps[@]}"; do
    say "codecs page by page on one CPU against makedumpfile's libraries: ${names[$k]}"
    taskset -c 0 "$tmp/codecbench" -helper "$tmp/codecs" -reps "$REPS" "${dumps[$k]}"
    echo
  done
fi
