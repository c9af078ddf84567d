#!/usr/bin/env bash
# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.
# bench.sh prints the figures the project is judged by; it is not a test.
#  1. Reliability and speed of the capture: RUNS (default 10) end-to-end
#     captures at crashkernel=96M (a 1 GiB guest, kdump format, zlib), run and
#     checked as the e2e test does by integration/cmd/crashvm.
#  2. The collector against makedumpfile, side by side on one 2 GiB vmcore of a
#     guest whose memory was filled with mixed content: wall time, output size
#     and peak RSS of `ukdump collect` and `makedumpfile`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
say() { printf 'bench: %s\n' "$*"; }
crashvm() { "${GO:-go}" run ./integration/cmd/crashvm "$@"; }

if [ "${SKIP_RUNS:-}" != 1 ]; then
  crashvm -runs "$RUNS" -crashkernel "${CRASHKERNEL:-96M}" -out out/bench-runs |
    tee out/bench-runs.txt | grep -E '^e2e: (run [0-9]+: |[0-9]+ passed)' || true
fi

# A 2 GiB guest with 1.4 GiB of mixed content, captured as a full ELF core.
core=out/bench-2g/dump/vmcore
if [ ! -s "$core" ]; then
  crashvm -format elf -mem 2G -fill 1400 -crashkernel 128M -out out/bench-2g | tail -n 2
fi
[ -s "$core" ] || { say "no 2 GiB vmcore"; exit 1; }
say "vmcore: $core, $(stat -c %s "$core") bytes; $(nproc) CPUs"

measure() { # name outfile cmd...: prints "name wall_s rss_kib size"
  local name=$1 out=$2; shift 2
  rm -f "$out"
  sync
  cat "$core" > /dev/null # the same warm page cache for every tool
  /usr/bin/time -v "$@" > /dev/null 2> "out/bench-$name.time" || { say "$name failed: $(tail -n 5 "out/bench-$name.time")"; return 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "out/bench-$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "out/bench-$name.time")
  echo "$name $wall $rss $(stat -c %s "$out")"
}

results=out/bench-collect.txt
: > "$results"
measure ukdump-zlib out/bench-ours.zlib out/ukdump collect -q -d 1 --compress zlib "$core" out/bench-ours.zlib >> "$results"
measure makedumpfile-zlib out/bench-theirs.zlib makedumpfile -c -d 1 "$core" out/bench-theirs.zlib >> "$results"
measure ukdump-zstd out/bench-ours.zstd out/ukdump collect -q -d 1 --compress zstd "$core" out/bench-ours.zstd >> "$results"
measure makedumpfile-lzo out/bench-theirs.lzo makedumpfile -l -d 1 "$core" out/bench-theirs.lzo >> "$results"
measure ukdump-zlib-d31 out/bench-ours31.zlib out/ukdump collect -q -d 31 --compress zlib "$core" out/bench-ours31.zlib >> "$results"
measure makedumpfile-zlib-d31 out/bench-theirs31.zlib makedumpfile -c -d 31 "$core" out/bench-theirs31.zlib >> "$results"
measure ukdump-zstd-d31 out/bench-ours31.zstd out/ukdump collect -q -d 31 --compress zstd "$core" out/bench-ours31.zstd >> "$results"
measure makedumpfile-lzo-d31 out/bench-theirs31.lzo makedumpfile -l -d 31 "$core" out/bench-theirs31.lzo >> "$results"

echo
printf '%-20s %9s %12s %14s\n' "" "wall (s)" "peak RSS" "output (MB)"
while read -r name wall rss size; do
  printf '%-20s %9.2f %9d KiB %14.1f\n' "$name" "$wall" "$rss" "$(echo "$size / 1000000" | bc -l)"
done < "$results"
ratio() { awk -v a="$1" -v b="$2" -v f="$3" '$1 == a { x = $f } $1 == b { y = $f } END { if (x > 0) printf "%.2f", y / x; else print "?" }' "$results"; }
echo
say "zlib, -d 1: ukdump is $(ratio ukdump-zlib makedumpfile-zlib 2)x faster than makedumpfile -c; makedumpfile's output is $(ratio ukdump-zlib makedumpfile-zlib 4)x ours"
say "ukdump zstd vs makedumpfile -l (lzo), -d 1: $(ratio ukdump-zstd makedumpfile-lzo 2)x faster; makedumpfile's output is $(ratio ukdump-zstd makedumpfile-lzo 4)x ours"
say "zlib, -d 31: ukdump is $(ratio ukdump-zlib-d31 makedumpfile-zlib-d31 2)x faster than makedumpfile -c; makedumpfile's output is $(ratio ukdump-zlib-d31 makedumpfile-zlib-d31 4)x ours"
say "ukdump zstd vs makedumpfile -l, -d 31: $(ratio ukdump-zstd-d31 makedumpfile-lzo-d31 2)x faster; makedumpfile's output is $(ratio ukdump-zstd-d31 makedumpfile-lzo-d31 4)x ours"
for lv in 1 31; do # page counts: ours and makedumpfile's dumpable pages must agree
  for f in out/bench-ours$([ $lv = 31 ] && echo 31).zlib out/bench-theirs$([ $lv = 31 ] && echo 31).zlib; do
    printf '  -d %-2s %-28s %s\n' "$lv" "$f" "$(out/ukdump info --json "$f" | python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["dumped"], "of", i["pages"], "pages,", i["size"], "bytes")')"
  done
done
