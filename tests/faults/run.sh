#!/usr/bin/env bash
# Long nemesis runs against real `cairn serve` processes (docs/faults.md, "Running the nemesis").
#
#   tests/faults/run.sh [DURATION] [SEED] [FAULTS] [-- more cairn-nemesis arguments]
#     DURATION  e.g. 30m, 2h, 90s (default 10m)
#     SEED      the nemesis's seed (default: the time)
#     FAULTS    comma-separated families or faults: kill,pause,partition,membership,disk or all (default all)
#   e.g. tests/faults/run.sh 1h 7 partition,kill -- --members 3 --clients 10
#
# Runs as root (SIGSTOP of members, tmpfs for the disk faults). Writes the report to
# tests/faults/reports/<date>-seed<SEED>.txt (operations, faults injected, checker verdicts, any failing history, the
# members' last words) and exits non-zero on a violation. On a violation the data directories and member logs are
# kept; their path is in the report.
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10m}"
seed="${2:-$(date +%s)}"
faults="${3:-all}"
shift $(( $# < 3 ? $# : 3 ))
[[ "${1:-}" == "--" ]] && shift
extra=("$@")

tmpfs=()
if [[ ",$faults," == *",all,"* || ",$faults," == *",disk,"* || ",$faults," == *",disk-full,"* ]]; then
  tmpfs=(--tmpfs-mb 1024)
fi
members=5
for a in "${extra[@]}"; do [[ "$a" == "--members" ]] && members=""; done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build tests/Cairn.Faults.Nemesis -c Release -warnaserror -v quiet -nologo >/dev/null
mkdir -p tests/faults/reports
report="tests/faults/reports/$(date +%Y%m%d-%H%M%S)-seed${seed}.txt"
echo "nemesis: ${duration} of ${faults}, seed ${seed}; report in ${report}" >&2
set +e
dotnet tests/Cairn.Faults.Nemesis/bin/Release/net10.0/cairn-nemesis.dll \
  --duration "$duration" --seed "$seed" --faults "$faults" ${members:+--members $members} "${tmpfs[@]}" --keep --report "$report" "${extra[@]}"
rc=$?
set -e
echo "nemesis: exit ${rc} ($( [[ $rc -eq 0 ]] && echo 'no violation' || echo 'VIOLATION or failure: see the report' ))" >&2
exit $rc
