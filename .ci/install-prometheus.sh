#!/usr/bin/env bash
# Install Prometheus and promtool (Debian package, 2.42) when missing. tests/observability/ start a
# real Prometheus on loopback with them; `make run` starts one when the binary is present.
# Idempotent: does nothing when both binaries are already on PATH.
set -euo pipefail

if command -v prometheus > /dev/null 2>&1 && command -v promtool > /dev/null 2>&1; then
    echo "prometheus: already installed ($(prometheus --version 2>&1 | head -n1))"
    exit 0
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# Try the cached package lists first; refresh them only if that fails.
if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus; then
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus
fi
# The Debian package enables a system service; we only need the binaries.
if command -v systemctl > /dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo_cmd[@]}" systemctl disable --now prometheus prometheus-node-exporter > /dev/null 2>&1 || true
fi
echo "prometheus: installed ($(prometheus --version 2>&1 | head -n1))"
