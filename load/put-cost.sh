#!/usr/bin/env bash
# What a put costs one Cairn member: starts `cairn serve` in a fresh directory (extra serve flags from the command line,
# e.g. --backend-batch-interval 0), runs cairn-load's put scenario (256-byte values, 10,000 keys, CLIENTS clients,
# default 256) for 10 s after a 1 s warm-up, and prints ops/s, p99, and the member's CPU (utime+stime) and bytes
# written (write_bytes, /proc) per put. For quick A/B checks; load/compare.sh is the comparison with etcd.
#
# Usage: load/put-cost.sh LABEL [cairn serve flags...]
set -euo pipefail
label=${1:?usage: load/put-cost.sh LABEL [cairn serve flags...]}; shift
cd "$(dirname "$0")/.."
dotnet build net/Cairn -c Release -v q -nologo >/dev/null
dotnet build load/Cairn.Load -c Release -v q -nologo >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-put-cost.XXXXXX")
trap 'kill -TERM "${pid:-}" 2>/dev/null || true; wait "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
HOME=$work dotnet net/Cairn/bin/Release/net10.0/cairn.dll serve --data-dir "$work/d" --listen-client 127.0.0.1:15379 \
  --listen-peer 127.0.0.1:15380 --listen-metrics 127.0.0.1:15381 "$@" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:15381/health >/dev/null 2>&1 && break; sleep 0.2; done
u0=$(awk '{print $14+$15}' "/proc/$pid/stat"); w0=$(awk '$1=="write_bytes:"{print $2}' "/proc/$pid/io")
dotnet load/Cairn.Load/bin/Release/net10.0/cairn-load.dll --target cairn --endpoints 127.0.0.1:15379 --duration 10s \
  --warm-up 1s --quiet --report-dir "$work/r" --scenario put --value-size 256 --key-count 10000 --clients "${CLIENTS:-256}" >"$work/load.log" 2>&1
u1=$(awk '{print $14+$15}' "/proc/$pid/stat"); w1=$(awk '$1=="write_bytes:"{print $2}' "/proc/$pid/io")
read -r ok ops p99 < <(awk -F, 'NR==2{print $8, $10, $13}' "$work/r/report.csv")
awk -v l="$label" -v u="$((u1 - u0))" -v w="$((w1 - w0))" -v ok="$ok" -v ops="$ops" -v p99="$p99" -v hz="$(getconf CLK_TCK)" \
  'BEGIN{n = ok * 11 / 10; printf "%s: %.0f ops/s, p99 %.1f ms, CPU %.1f us/op, disk %.2f KiB/op\n", l, ops, p99, u / hz * 1e6 / n, w / 1024 / n}'
