#!/usr/bin/env bash
# Runs every test project in the solution (Release) and prints the total over all of them as the
# last line: "N passed, N failed, N skipped". Extra arguments go to `dotnet test`
# (e.g. --filter "Category!=Soak").
set -uo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Build once (all cores), then run the test projects one after another (-m:1): several of them start clusters
# of member processes with timers and timeouts, and on two cores test projects running at once starve each
# other's members for hundreds of milliseconds — what the tests measure is Cairn, not that contention.
# What the tests need beyond .NET (etcdctl for the etcd API tests), installed when missing.
./scripts/setup-test.sh 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [[ $rc -eq 0 ]]; then
  dotnet build Engine.sln -c Release 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
fi
if [[ $rc -eq 0 ]]; then
  dotnet test Engine.sln -c Release --no-build -m:1 "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
fi
# VSTest prints one summary per test project, e.g.
#   Passed!  - Failed:     0, Passed:    42, Skipped:     0, Total:    42, Duration: 3 s - X.dll (net10.0)
totals="$(grep -E '(Passed|Failed)! +- +Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" \
  | sed -E 's/.*Failed: +([0-9]+), Passed: +([0-9]+), Skipped: +([0-9]+).*/\1 \2 \3/' \
  | awk '{f+=$1; p+=$2; s+=$3} END {printf "%d %d %d", p, f, s}')"
read -r passed failed skipped <<<"${totals:-0 0 0}"
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi   # build error or crashed test host
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit $rc
