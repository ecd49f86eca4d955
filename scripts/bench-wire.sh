#!/usr/bin/env bash
# The wire benchmark: pipelined and unpipelined put/get through the client library against one Cairn member and a
# three-member cluster on loopback, next to redis-benchmark against Debian's redis-server on the same machine.
# Usage: scripts/bench-wire.sh [seconds per run, default 10]. Installs what it needs (scripts/setup-bench.sh).
#        scripts/bench-wire.sh tls [seconds per run]: one member without TLS, then one with TLS (certificates from
#        `cairn certs`; with client certificates), the same runs against each, and the ratio TLS / plaintext.
# Cairn members run as `cairn serve` processes with their defaults: encrypted, log fsynced on every batch.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all
if [ "${1:-}" = tls ]; then mode=tls; shift; fi
secs=${1:-10}
[ "$mode" = tls ] || ./scripts/setup-bench.sh >/dev/null
dotnet build net/Cairn -c Release -v q -nologo >/dev/null
dotnet build bench/Cairn.Bench -c Release -v q -nologo >/dev/null
cairn="dotnet net/Cairn/bin/Release/net10.0/cairn.dll"
bench="dotnet bench/Cairn.Bench/bin/Release/net10.0/Cairn.Bench.dll wire"
work=$(mktemp -d /tmp/cairn-bench-wire.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_member() { # name client peer cluster [more flags]
  local name=$1 client=$2 peer=$3 cl=$4; shift 4
  $cairn serve --name "$name" --data-dir "$work/$name" --listen-client "127.0.0.1:$client" --listen-peer "127.0.0.1:$peer" \
    --listen-metrics "" --listen-grpc "" --initial-cluster "$cl" --key-file "$work/master.key" --peer-secret-file "$work/peer.secret" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_leader() { # endpoint [tls flags]
  local ep=$1; shift
  for _ in $(seq 100); do
    if $cairn --endpoints "$ep" "$@" status -w json 2>/dev/null | grep -q '"leader": *[1-9]'; then return 0; fi
    sleep 0.2
  done
  echo "no leader at $ep" >&2; exit 1
}
openssl rand -hex 32 >"$work/peer.secret" 2>/dev/null || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/peer.secret"

if [ "$mode" = tls ]; then
  echo "# wire benchmark, TLS against plaintext, $(date -u +%F), $(nproc) cores, ${secs}s per run, one member"
  $cairn certs --dir "$work/certs" >/dev/null
  c="$work/certs"
  tlsflags=(--cacert "$c/ca.pem" --cert "$c/root.pem" --key "$c/root.key")
  declare -A result
  tls_runs() { # tag endpoint [bench flags]
    local tag=$1 ep=$2; shift 2
    result[$tag,put1]=$($bench --endpoints "$ep" "$@" --op put --connections 50 --depth 1 --seconds "$secs" --label "put unpipelined (50 connections)")
    result[$tag,put64]=$($bench --endpoints "$ep" "$@" --op put --connections 4 --depth 64 --seconds "$secs" --label "put pipelined (4 x 64)")
    result[$tag,get1]=$($bench --endpoints "$ep" "$@" --op get --connections 50 --depth 1 --seconds "$secs" --label "get serializable unpipelined (50 connections)")
    result[$tag,get64]=$($bench --endpoints "$ep" "$@" --op get --connections 4 --depth 64 --seconds "$secs" --label "get serializable pipelined (4 x 64)")
  }
  start_member plain 19379 19380 "plain=127.0.0.1:19380"
  wait_leader 127.0.0.1:19379
  tls_runs plain 127.0.0.1:19379
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=()
  start_member tls 19479 19480 "tls=127.0.0.1:19480" --cert "$c/member.pem" --key "$c/member.key" --cacert "$c/ca.pem" --client-cert-auth
  wait_leader 127.0.0.1:19479 "${tlsflags[@]}"
  tls_runs tls 127.0.0.1:19479 "${tlsflags[@]}"
  ops() { sed 's/.*: \([0-9]*\) ops\/s.*/\1/'; }
  echo
  echo "| run | plaintext | TLS (mutual) | TLS / plaintext |"
  echo "|---|---|---|---|"
  for k in put1 put64 get1 get64; do
    p=$(echo "${result[plain,$k]}" | head -1 | ops); t=$(echo "${result[tls,$k]}" | head -1 | ops)
    label=$(echo "${result[plain,$k]}" | head -1 | sed 's/:.*//')
    echo "| $label | $p ops/s | $t ops/s | $(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }') |"
  done
  echo
  for k in put1 put64 get1 get64; do echo "- plaintext ${result[plain,$k]}"; echo "- TLS ${result[tls,$k]}"; done
  exit 0
fi

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
