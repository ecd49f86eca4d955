#!/usr/bin/env bash
# The wire benchmark: pipelined and unpipelined put/get through the client library against one Cairn member and a
# three-member cluster on loopback, next to redis-benchmark against Debian's redis-server on the same machine.
# Usage: scripts/bench-wire.sh [seconds per run, default 10]. Installs what it needs (scripts/setup-bench.sh).
# Cairn members run as `cairn serve` processes with their defaults: encrypted, log fsynced on every batch.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
./scripts/setup-bench.sh >/dev/null
dotnet build net/Cairn -c Release -v q -nologo >/dev/null
dotnet build bench/Cairn.Bench -c Release -v q -nologo >/dev/null
cairn="dotnet net/Cairn/bin/Release/net10.0/cairn.dll"
bench="dotnet bench/Cairn.Bench/bin/Release/net10.0/Cairn.Bench.dll wire"
work=$(mktemp -d /tmp/cairn-bench-wire.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "# wire benchmark, $(date -u +%F), $(nproc) cores, ${secs}s per Cairn run"
echo
echo "## redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (256-byte values, 50 clients)"
redis-server --port 16379 --save "" --appendonly no --dir "$work" >/dev/null & pids+=($!)
sleep 0.5
echo "- SET unpipelined: $(redis-benchmark -p 16379 -t set -n 200000 -c 50 -d 256 -q | tr -d '\r' | grep -o '[0-9.]* requests per second')"
echo "- SET pipelined 16: $(redis-benchmark -p 16379 -t set -n 1000000 -c 50 -d 256 -P 16 -q | tr -d '\r' | grep -o '[0-9.]* requests per second')"
echo "- GET pipelined 16: $(redis-benchmark -p 16379 -t get -n 1000000 -c 50 -d 256 -P 16 -q | tr -d '\r' | grep -o '[0-9.]* requests per second')"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
redis-server --port 16379 --save "" --appendonly yes --appendfsync always --dir "$work" >/dev/null & pids+=($!)
sleep 0.5
echo "- SET unpipelined, appendfsync always: $(redis-benchmark -p 16379 -t set -n 100000 -c 50 -d 256 -q | tr -d '\r' | grep -o '[0-9.]* requests per second')"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

start_member() { # name client peer cluster
  $cairn serve --name "$1" --data-dir "$work/$1" --listen-client "127.0.0.1:$2" --listen-peer "127.0.0.1:$3" \
    --listen-metrics "" --initial-cluster "$4" --key-file "$work/master.key" >"$work/$1.log" 2>&1 &
  pids+=($!)
}
wait_leader() { # endpoint
  for _ in $(seq 100); do
    if $cairn --endpoints "$1" status -w json 2>/dev/null | grep -q '"leader": *[1-9]'; then return 0; fi
    sleep 0.2
  done
  echo "no leader at $1" >&2; exit 1
}
runs() { # endpoints label
  echo "## Cairn, $2 (256-byte values; encrypted; fsync per batch)"
  echo "- $($bench --endpoints "$1" --op put --connections 50 --depth 1 --seconds "$secs" --label 'put unpipelined (50 connections)')"
  echo "- $($bench --endpoints "$1" --op put --connections 4 --depth 64 --seconds "$secs" --label 'put pipelined (4 connections x 64 in flight)')"
  echo "- $($bench --endpoints "$1" --op get --connections 50 --depth 1 --seconds "$secs" --label 'get serializable unpipelined (50 connections)')"
  echo "- $($bench --endpoints "$1" --op get --connections 4 --depth 64 --seconds "$secs" --label 'get serializable pipelined (4 x 64)')"
  echo "- $($bench --endpoints "$1" --op get --consistency l --connections 4 --depth 64 --seconds "$secs" --label 'get linearizable pipelined (4 x 64)')"
}

echo
start_member one 19379 19380 "one=127.0.0.1:19380"
wait_leader 127.0.0.1:19379
runs 127.0.0.1:19379 "one member"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=()

echo
cluster="a=127.0.0.1:29380,b=127.0.0.1:29480,c=127.0.0.1:29580"
start_member a 29379 29380 "$cluster"; start_member b 29479 29480 "$cluster"; start_member c 29579 29580 "$cluster"
wait_leader 127.0.0.1:29379
runs 127.0.0.1:29379,127.0.0.1:29479,127.0.0.1:29579 "three members (connections spread over all three)"
