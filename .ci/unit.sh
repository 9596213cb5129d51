#!/usr/bin/env bash
# unit.sh: every test with the race detector. A package that fails is run
# once more on its own: this machine is shared and noisy, and a timing
# flake should not hide a whole run's results. A retried package is named
# loudly ("FLAKY") so it gets fixed; one that fails twice fails the build.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -timeout 25m -count=1 ./... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && exit 0
failed=$(grep -E '^(FAIL|--- FAIL)' "$log" | grep -oE 'github.com/lossbench/lossbench[^[:space:]]*' | sort -u)
if [ -z "$failed" ] || grep -qE '\[build failed\]|\[setup failed\]' "$log"; then
  echo "unit: go test failed (build or setup failure, or no failing package named): not retried" >&2
  exit "$status"
fi
echo
echo "FLAKY? these failed and are run once more on their own:"
grep -E '^\s*--- FAIL' "$log" | sed 's/^/  /'
echo "$failed" | sed 's/^/  /'
if go test -race -timeout 25m -count=1 $failed; then
  echo "FLAKY: passed on retry; fix them: $(echo $failed)"
  exit 0
fi
echo "unit: failed again on retry" >&2
exit 1
