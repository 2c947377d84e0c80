#!/usr/bin/env bash
# check_skips.sh BUILD_DIR CTEST_OUTPUT - fails when a test reported
# "skipped" that tests/expected_skips.txt does not allow: a skip where the
# test must run means it tested nothing. Reads ctest's own output (tests
# skipped with SKIP_RETURN_CODE) and Testing/Temporary/LastTest.log (cmocka's
# "[  SKIPPED ] name" lines and shell tests' "SKIP" lines, by ctest name).
set -euo pipefail
build=$1
ctest_out=$2
here=$(cd "$(dirname "$0")" && pwd)
allowed=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$here/expected_skips.txt" | grep -v '^$' || true)
log="$build/Testing/Temporary/LastTest.log"

skipped=$( {
  # ctest: "  12/108 Test  #90: name ....***Skipped   0.01 sec"
  grep -E '\*\*\*Skipped|\(Not Run\)' "$ctest_out" 2>/dev/null |
    sed -E 's/.*Test +#[0-9]+: ([^ ]+) .*/\1/' || true
  [ -f "$log" ] && awk '
    /^[0-9]+\/[0-9]+ Testing: / { cur = $3; next }
    /^\[  SKIPPED \] / && $4 !~ /^[0-9]+$/ { print cur ":" $4; next }
    /^SKIP[: ]/ { print cur; next }
  ' "$log"
} | sort -u )

bad=0
while IFS= read -r s; do
  [ -z "$s" ] && continue
  if grep -qxF "$s" <<<"$allowed" || grep -qxF "${s%%:*}" <<<"$allowed"; then
    echo "check_skips: skipped (allowed): $s"
  else
    echo "check_skips: FAIL: $s skipped; it must run here (or add it to tests/expected_skips.txt with why)" >&2
    bad=1
  fi
done <<<"$skipped"
exit $bad
