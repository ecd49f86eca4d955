#!/usr/bin/env bash
# What the tests need from Debian: etcdctl 3.4 (etcd-client), which the etcd API tests drive against Cairn.
# Idempotent: installs only what is missing. scripts/test.sh runs it first.
set -euo pipefail
command -v etcdctl >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test: etcdctl is missing and apt-get is not available; install etcd-client 3.4 by hand" >&2
  exit 1
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
if ! apt-cache show etcd-client >/dev/null 2>&1; then $sudo apt-get update; fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends etcd-client
echo "setup-test: installed etcd-client ($(etcdctl version | head -1))"
