#!/usr/bin/env bash
# Cairn next to etcd on this machine, same workloads, same load generator (load/Cairn.Load).
#
# Usage: load/compare.sh [SECONDS_PER_ROW (default 10)] [--members "3 1"] [--out FILE]
#
# Installs Debian's etcd-server when it is missing (and curl), builds cairn and cairn-load, then for three members and
# for one: starts an etcd cluster on loopback, runs every row against it, stops it; starts a Cairn cluster on loopback
# (each member with its own data directory under one work directory on the same disk as etcd's; both durable — etcd
# fsyncs its WAL on every commit by default, Cairn fsyncs its log on every Raft batch; Cairn runs with its defaults,
# so its pages, log and snapshots are encrypted), runs the same rows, then the same rows again through Cairn's etcd API
# (its gRPC port, with the same client library as the etcd column: like for like), stops it. Each row gets a one-second
# warm-up.
# Writes one markdown table per cluster size (scenario, clients, ops/s of each and their ratio, p50 and p99 of each, the
# load generator's own CPU use beside each run), then what each operation cost the servers — CPU (utime+stime) and
# bytes written to disk (write_bytes), summed over every member process from /proc, per operation completed — then
# the leaders' counters during the put rows (where the time goes),
# to FILE (default load-reports/compare-STAMP.md) and to standard output. Every run's own report (markdown, CSV,
# timeline, latency chart) stays under load-reports/compare-STAMP/. Stops everything it started, also on Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=10
members="3 1"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --members) members="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) secs="$1"; shift ;;
  esac
done
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 1 ]] || { echo "compare: SECONDS_PER_ROW must be a whole number of seconds" >&2; exit 2; }

# --- what the comparison needs: etcd 3.4 and curl from Debian (idempotent) ---
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [[ ${#missing[@]} -gt 0 ]]; then
  command -v apt-get >/dev/null 2>&1 || { echo "compare: missing ${missing[*]} and apt-get is not available; install them by hand" >&2; exit 1; }
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then $sudo apt-get update; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  # Debian's package enables an etcd service on 2379; this script uses its own ports and data directories.
fi

dotnet build net/Cairn -c Release -v q -nologo >/dev/null
dotnet build load/Cairn.Load -c Release -v q -nologo >/dev/null
cairn=(dotnet net/Cairn/bin/Release/net10.0/cairn.dll)
load=(dotnet load/Cairn.Load/bin/Release/net10.0/cairn-load.dll)

stamp=$(date -u +%Y%m%d-%H%M%S)
reports="load-reports/compare-$stamp"
out=${out:-load-reports/compare-$stamp.md}
mkdir -p "$reports" "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-compare.XXXXXX")
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# --- clusters ---
# etcd member i: clients 2i379 (23379, 24379, 25379), peers 2i380. Cairn member i: clients 1i379, peers 1i380, metrics 1i381.
etcd_endpoints="" cairn_endpoints="" cairn_metrics=""
start_etcd() { # n
  local n=$1 cluster="" i
  for ((i = 0; i < n; i++)); do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((23380 + 1000 * i))"; done
  etcd_endpoints=""
  for ((i = 0; i < n; i++)); do
    local c=$((23379 + 1000 * i)) p=$((23380 + 1000 * i))
    etcd --name "e$i" --data-dir "$work/etcd$n/e$i" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$cluster" --initial-cluster-token "compare-$n" --initial-cluster-state new \
      --log-level warn >"$work/etcd$n-e$i.log" 2>&1 &
    pids+=($!)
    etcd_endpoints+="${etcd_endpoints:+,}127.0.0.1:$c"
  done
  for ((i = 0; i < n; i++)); do wait_health "http://127.0.0.1:$((23379 + 1000 * i))/health" '"health":"true"' "etcd e$i ($work/etcd$n-e$i.log)"; done
}
start_cairn() { # n
  local n=$1 cluster="" i
  for ((i = 0; i < n; i++)); do cluster+="${cluster:+,}c$i=127.0.0.1:$((13380 + 1000 * i))"; done
  cairn_endpoints="" cairn_metrics="" cairn_grpc=""
  for ((i = 0; i < n; i++)); do
    local c=$((13379 + 1000 * i))
    "${cairn[@]}" serve --name "c$i" --data-dir "$work/cairn$n/c$i" --key-file "$work/master.key" \
      --listen-client "127.0.0.1:$c" --listen-peer "127.0.0.1:$((c + 1))" --listen-metrics "127.0.0.1:$((c + 2))" \
      --listen-grpc "127.0.0.1:$((c + 3))" --initial-cluster "$cluster" --initial-cluster-token "compare-$n" >"$work/cairn$n-c$i.log" 2>&1 &
    pids+=($!)
    cairn_endpoints+="${cairn_endpoints:+,}127.0.0.1:$c"
    cairn_grpc+="${cairn_grpc:+,}127.0.0.1:$((c + 3))"
    cairn_metrics+="${cairn_metrics:+ }127.0.0.1:$((c + 2))"
  done
  for m in $cairn_metrics; do wait_health "http://$m/health" "" "cairn member with metrics on $m"; done
}
wait_health() { # url expected-substring what
  for _ in $(seq 150); do
    if body=$(curl -sf --max-time 1 "$1" 2>/dev/null) && [[ -z "$2" || "$body" == *"$2"* ]]; then return 0; fi
    sleep 0.2
  done
  echo "compare: $3 did not become healthy in 30 s" >&2; exit 1
}

# --- the leader's counters (where the time goes) ---
cairn_counters() { # prints: proposals batches fsync_s apply_s of the member that leads
  for m in $cairn_metrics; do
    local text; text=$(curl -sf --max-time 2 "http://$m/metrics" || true)
    if grep -q '^cairn_server_is_leader 1' <<<"$text"; then
      awk '$1=="cairn_proposals_committed_total"{p=$2} $1=="cairn_raft_batches_total"{b=$2} $1=="cairn_wal_fsync_seconds_total"{f=$2} $1=="cairn_apply_seconds_total"{a=$2} END{printf "%d %d %f %f\n", p, b, f, a}' <<<"$text"
      return
    fi
  done
  echo "0 0 0 0"
}
etcd_counters() { # prints: proposals fsyncs fsync_s backend_commit_s of the member that leads
  local e
  for e in ${etcd_endpoints//,/ }; do
    local text; text=$(curl -sf --max-time 2 "http://$e/metrics" || true)
    if grep -q '^etcd_server_is_leader 1' <<<"$text"; then
      awk '$1=="etcd_server_proposals_committed_total"{p=$2} $1=="etcd_disk_wal_fsync_duration_seconds_count"{n=$2} $1=="etcd_disk_wal_fsync_duration_seconds_sum"{f=$2} $1=="etcd_disk_backend_commit_duration_seconds_sum"{a=$2} END{printf "%d %d %f %f\n", p, n, f, a}' <<<"$text"
      return
    fi
  done
  echo "0 0 0 0"
}

# --- the rows: label | clients column | cairn-load arguments (the step reported is the first, or "watch delivery") ---
rows=(
  "put 256 B|1|--scenario put --value-size 256 --key-count 10000 --clients 1"
  "put 256 B|16|--scenario put --value-size 256 --key-count 10000 --clients 16"
  "put 256 B|256|--scenario put --value-size 256 --key-count 10000 --clients 256"
  "get, linearizable|16|--scenario get --consistency linearizable --key-count 1000 --clients 16"
  "get, serializable|16|--scenario get --consistency serializable --key-count 1000 --clients 16"
  "txn compare-and-swap|16|--scenario txn-cas --value-size 256 --clients 16"
  "watch latency, 1,000 watchers (50 puts/s)|1000|--scenario watch --watchers 1000 --rate 50"
)

declare -A result counters loadavg cost
# CPU ticks (utime+stime) and bytes written to storage (write_bytes) of every member process running now, summed.
server_usage() {
  local p ticks=0 bytes=0 t b
  for p in "${pids[@]}"; do
    [[ -r /proc/$p/stat ]] || continue
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    b=$(awk '$1=="write_bytes:"{print $2}' "/proc/$p/io" 2>/dev/null || echo 0)
    ticks=$((ticks + t)); bytes=$((bytes + b))
  done
  echo "$ticks $bytes"
}
hz=$(getconf CLK_TCK)
run_rows() { # system n endpoints (system "cairnapi": Cairn through its etcd API, with the etcd load target)
  local system=$1 n=$2 endpoints=$3 k=0 row label clients args dir before after
  local target=$system counters_of=$system
  [[ $system == cairnapi ]] && target=etcd counters_of=cairn
  for row in "${rows[@]}"; do
    IFS='|' read -r label clients args <<<"$row"
    dir="$reports/$system-$n-members-$k"
    loadavg[$system,$n,$k]=$(cut -d' ' -f1 /proc/loadavg)
    before=$("${counters_of}_counters")
    local usage0 usage1; usage0=$(server_usage)
    # shellcheck disable=SC2086
    "${load[@]}" --target "$target" --endpoints "$endpoints" --duration "${secs}s" --warm-up 1s --quiet \
      --report-dir "$dir" $args >"$dir.log" 2>&1 || true
    usage1=$(server_usage)
    after=$("${counters_of}_counters")
    local step=1; [[ "$args" == *"--scenario watch"* ]] && step=2
    if [[ -f "$dir/report.csv" ]]; then
      # target,scenario,step,simulation,clients,connections,seconds,ok,errors,ops_per_s,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,mean_ms,loadgen_cpu_pct,...
      result[$system,$n,$k]=$(awk -F, -v row=$((step + 1)) 'NR==row{print $10, $11, $13, $17, $9}' "$dir/report.csv")
    else
      result[$system,$n,$k]="- - - - failed"
    fi
    [[ "$args" == *"--scenario put"* ]] && counters[$system,$n,$k]="$before $after"
    # The warm-up's operations are not in the report: the usage is spread over the run's operations plus a warm-up's share.
    local okops; okops=$(awk -F, -v row=$((step + 1)) 'NR==row{print $8}' "$dir/report.csv" 2>/dev/null || echo 0)
    cost[$system,$n,$k]=$(awk -v a="$usage0" -v b="$usage1" -v ok="${okops:-0}" -v hz="$hz" -v s="$secs" 'BEGIN{
      split(a, x, " "); split(b, y, " "); ops = ok * (s + 1) / s;
      if (ops > 0) printf "%.1f %.2f\n", (y[1] - x[1]) / hz * 1e6 / ops, (y[2] - x[2]) / 1024 / ops; else print "- -" }')
    echo "compare: $system, $n member(s), $label, $clients clients: ops/s p50 p99 cpu errors = ${result[$system,$n,$k]}" >&2
    k=$((k + 1))
  done
}

for n in $members; do
  start_etcd "$n"; run_rows etcd "$n" "$etcd_endpoints"; stop_all
  start_cairn "$n"; run_rows cairn "$n" "$cairn_endpoints"; run_rows cairnapi "$n" "$cairn_grpc"; stop_all
done

fmt() { awk -v v="$1" -v d="$2" 'BEGIN{ if (v == "-" || v == "") print "—"; else printf "%." d "f\n", v }'; }
ops() { awk -v v="$1" 'BEGIN{ if (v == "-" || v == "") { print "—"; exit } s = sprintf("%.0f", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]$/, ",&", s); print s }'; }
{
  echo "# Cairn and etcd side by side, $(date -u +%F)"
  echo
  echo "\`load/compare.sh $secs\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(etcd --version | head -1);"
  echo "Cairn at $(git rev-parse --short HEAD 2>/dev/null || echo '?'). ${secs} s per run after a 1 s warm-up; clients spread over one connection per member."
  echo "Latencies in ms (HdrHistogram). \"gen CPU\" is the load generator's own CPU use during the run (100% = one core);"
  echo "\"load avg before\" is the machine's 1-minute load average just before the run (anything else running shows there)."
  for n in $members; do
    echo
    echo "## $n member$([[ $n -gt 1 ]] && echo s)"
    echo
    echo "| scenario | clients | Cairn ops/s | etcd ops/s | ratio | Cairn p50 | etcd p50 | Cairn p99 | etcd p99 | gen CPU Cairn / etcd | errors Cairn / etcd | load avg before Cairn / etcd | Cairn via etcd API ops/s | its ratio to etcd | its p50 / p99 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    k=0
    for row in "${rows[@]}"; do
      IFS='|' read -r label clients _ <<<"$row"
      read -r c_ops c_p50 c_p99 c_cpu c_err _ <<<"${result[cairn,$n,$k]}"
      read -r e_ops e_p50 e_p99 e_cpu e_err _ <<<"${result[etcd,$n,$k]}"
      read -r a_ops a_p50 a_p99 _ _ _ <<<"${result[cairnapi,$n,$k]:-- - - - -}"
      ratio=$(awk -v a="$c_ops" -v b="$e_ops" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2f×", a / b; else print "—" }')
      aratio=$(awk -v a="$a_ops" -v b="$e_ops" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2f×", a / b; else print "—" }')
      echo "| $label | $clients | $(ops "$c_ops") | $(ops "$e_ops") | $ratio | $(fmt "$c_p50" 2) | $(fmt "$e_p50" 2) | $(fmt "$c_p99" 2) | $(fmt "$e_p99" 2) | $(fmt "$c_cpu" 0)% / $(fmt "$e_cpu" 0)% | ${c_err:-—} / ${e_err:-—} | ${loadavg[cairn,$n,$k]:-—} / ${loadavg[etcd,$n,$k]:-—} | $(ops "$a_ops") | $aratio | $(fmt "$a_p50" 2) / $(fmt "$a_p99" 2) |"
      k=$((k + 1))
    done
  done
  echo
  echo "## What an operation costs the servers"
  echo
  echo "Server CPU (utime + stime) and bytes written to disk (/proc/PID/io write_bytes), summed over every member process"
  echo "of the cluster, divided by the operations completed (the warm-up second counted in proportion)."
  echo
  echo "| members | scenario | clients | Cairn CPU µs/op | etcd CPU µs/op | CPU ratio | Cairn disk KiB/op | etcd disk KiB/op | disk ratio | Cairn via etcd API CPU µs/op | its CPU ratio to etcd |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $members; do
    k=0
    for row in "${rows[@]}"; do
      IFS='|' read -r label clients _ <<<"$row"
      read -r c_cpu c_disk <<<"${cost[cairn,$n,$k]:-- -}"
      read -r e_cpu e_disk <<<"${cost[etcd,$n,$k]:-- -}"
      read -r a_cpu _ <<<"${cost[cairnapi,$n,$k]:-- -}"
      cr=$(awk -v a="$c_cpu" -v b="$e_cpu" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2f×", a / b; else print "—" }')
      dr=$(awk -v a="$c_disk" -v b="$e_disk" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2f×", a / b; else print "—" }')
      ar=$(awk -v a="$a_cpu" -v b="$e_cpu" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2f×", a / b; else print "—" }')
      echo "| $n | $label | $clients | $(fmt "$c_cpu" 1) | $(fmt "$e_cpu" 1) | $cr | $(fmt "$c_disk" 2) | $(fmt "$e_disk" 2) | $dr | $(fmt "$a_cpu" 1) | $ar |"
      k=$((k + 1))
    done
  done
  echo
  echo "## Where the time goes: the leader's counters during the put rows"
  echo
  echo "Cairn: proposals committed, Raft batches (one round of persist, send, apply on the raft thread), seconds in the"
  echo "log's fsync and in apply, per second of the run. etcd: proposals committed, WAL fsyncs, seconds in WAL fsync and in"
  echo "backend commits, per second."
  echo
  echo "| members | system | clients | proposals/s | batches or fsyncs/s | proposals per batch or fsync | fsync s/s | apply or backend commit s/s |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|"
  for n in $members; do
    k=0
    for row in "${rows[@]}"; do
      IFS='|' read -r _ clients args <<<"$row"
      for system in cairn cairnapi etcd; do
        [[ -n "${counters[$system,$n,$k]:-}" ]] || continue
        read -r p0 b0 f0 a0 p1 b1 f1 a1 <<<"${counters[$system,$n,$k]}"
        awk -v n="$n" -v s="$system" -v c="$clients" -v t="$secs" -v p="$((p1 - p0))" -v b="$((b1 - b0))" -v f0="$f0" -v f1="$f1" -v a0="$a0" -v a1="$a1" \
          'BEGIN{ t += 1; printf "| %s | %s | %s | %.0f | %.0f | %.1f | %.2f | %.2f |\n", n, s, c, p / t, b / t, (b > 0 ? p / b : 0), (f1 - f0) / t, (a1 - a0) / t }'
      done
      k=$((k + 1))
    done
  done
  echo
  echo "(Counter deltas span the warm-up second too, so they are divided by the run's length plus one second.)"
} | tee "$out"
echo "compare: table in $out, every run's report under $reports/" >&2
