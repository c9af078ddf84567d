#!/usr/bin/env bash
# Copyright 2026 the ukdump authors. All rights reserved.
# Use of this source code is governed by a BSD-style
# license that can be found in the LICENSE file.
#
# check-license.sh: every source file says its license in its first lines
# (make check runs it; the project is BSD-3-Clause, as u-root: LICENSE).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f LICENSE ] || { echo "check-license: no LICENSE file"; exit 1; }
bad=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  if ! head -n 5 "$f" | grep -q 'BSD-style'; then
    echo "check-license: $f has no license line (add the three-line BSD-style header of the other files)"
    bad=1
  fi
done < <(git ls-files --cached --others --exclude-standard -- '*.go' '*.sh' Makefile .ci/run 'config/*.service' 'config/*.toml' 'config/examples/*.toml' \
  packaging/deb/kernel-postinst packaging/deb/kernel-postrm packaging/deb/postinst packaging/deb/postrm packaging/deb/prerm | grep -v '/testdata/')
exit $bad
