#!/usr/bin/env bash
# A local three-member cluster as three `cairn serve` processes (so one can be killed and restarted):
# members m1..m3, clients on 127.0.0.1:9379, 9479, 9579, peers on 9380, 9480, 9580, metrics on 9381, 9481, 9581,
# data and logs in ./dev-cluster (or $1). Ctrl+C stops all three (each leader hands over first).
# `cairn dev-cluster` does the same in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-dev-cluster}
mkdir -p "$dir"
dotnet build net/Cairn -c Release -v q -nologo >/dev/null
cluster="m1=127.0.0.1:9380,m2=127.0.0.1:9480,m3=127.0.0.1:9580"
pids=()
for i in 0 1 2; do
  name="m$((i + 1))"
  dotnet net/Cairn/bin/Release/net10.0/cairn.dll serve --name "$name" --data-dir "$dir/$name" \
    --listen-client "127.0.0.1:$((9379 + 100 * i))" --listen-peer "127.0.0.1:$((9380 + 100 * i))" \
    --listen-metrics "127.0.0.1:$((9381 + 100 * i))" --listen-grpc "127.0.0.1:$((i == 0 ? 2379 : 2379 + 10000 * (i + 1)))" \
    --initial-cluster "$cluster" \
    --initial-cluster-token cairn-dev-cluster >"$dir/$name.log" 2>&1 &
  pids+=($!)
  echo "$name: pid $!, clients on 127.0.0.1:$((9379 + 100 * i)), etcd API on 127.0.0.1:$((i == 0 ? 2379 : 2379 + 10000 * (i + 1))), log $dir/$name.log"
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait' INT TERM
echo "try: dotnet net/Cairn/bin/Release/net10.0/cairn.dll --endpoints 127.0.0.1:9379,127.0.0.1:9479,127.0.0.1:9579 status -w table"
wait
