#!/usr/bin/env bash
# What the tests need from Debian: etcdctl 3.4 (etcd-client), which the etcd API tests drive against Cairn, and curl
# (the JSON gateway tests). Idempotent: installs only what is missing. scripts/test.sh runs it first.
set -euo pipefail
missing=()
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then $sudo apt-get update; fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-test: installed ${missing[*]}"
