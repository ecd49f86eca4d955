#!/usr/bin/env bash
# Prepares this machine for bench/Cairn.Bench and the wire benchmarks. Idempotent: installs only what is missing.
#
# - liblmdb0: LightningDB ships a liblmdb.so built against glibc 2.38, which does not load on Debian 12 (glibc 2.36).
#   The storage benchmarks redirect LightningDB's "lmdb" import to Debian's liblmdb.so.0 (LMDB 0.9.24).
#   RocksDB's native library from its NuGet package loads as it is.
# - redis-server and redis-tools: the raw TCP reference for the wire benchmark (scripts/bench-wire.sh).
set -euo pipefail

lib=/usr/lib/x86_64-linux-gnu/liblmdb.so.0
missing=()
[[ -e "$lib" ]] || missing+=(liblmdb0)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-bench: liblmdb0, redis-server and redis-benchmark present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-bench: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

# Refresh the package lists only when they do not know the packages yet.
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
  $sudo apt-get update
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
# Debian's package starts a redis-server service; the wire benchmark starts its own on another port.

if [[ ! -e "$lib" ]]; then
  echo "setup-bench: liblmdb0 installed but $lib is still missing (another architecture?)" >&2
  exit 1
fi
echo "setup-bench: installed ${missing[*]}"
