#!/usr/bin/env bash
# Prepares this machine for bench/Cairn.Bench. Idempotent: does nothing when everything is in place.
#
# LightningDB ships a liblmdb.so built against glibc 2.38, which does not load on Debian 12 (glibc 2.36).
# The storage benchmarks redirect LightningDB's "lmdb" import to Debian's liblmdb.so.0 (LMDB 0.9.24), so
# that package must be installed. RocksDB's native library from its NuGet package loads as it is.
set -euo pipefail

lib=/usr/lib/x86_64-linux-gnu/liblmdb.so.0

if [[ -e "$lib" ]]; then
  echo "setup-bench: $lib present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-bench: $lib is missing and apt-get is not available; install LMDB 0.9 (liblmdb0) by hand" >&2
  exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

# Refresh the package lists only when they have never been fetched (apt-cache then knows nothing of liblmdb0).
if ! apt-cache show liblmdb0 >/dev/null 2>&1; then
  $sudo apt-get update
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y liblmdb0

if [[ ! -e "$lib" ]]; then
  echo "setup-bench: liblmdb0 installed but $lib is still missing (another architecture?)" >&2
  exit 1
fi
echo "setup-bench: installed $(dpkg-query -W -f='${Package} ${Version}' liblmdb0)"
