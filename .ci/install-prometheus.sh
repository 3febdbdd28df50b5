#!/usr/bin/env bash
# Install Prometheus and promtool (Debian package, 2.42) when missing. tests/observability/ start a
# real Prometheus on loopback with them; `make run` starts one when the binary is present.
# Idempotent: does nothing when both binaries are already on PATH.
set -euo pipefail
# shellcheck source=.ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v prometheus > /dev/null 2>&1 && command -v promtool > /dev/null 2>&1; then
    echo "prometheus: already installed ($(prometheus --version 2>&1 | head -n1))"
    exit 0
fi

bash "$(dirname "${BASH_SOURCE[0]}")/prerequisites.sh" apt
apt_install prometheus
# The Debian package enables a system service; we only need the binaries.
if command -v systemctl > /dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    as_root systemctl disable --now prometheus prometheus-node-exporter > /dev/null 2>&1 || true
fi
echo "prometheus: installed ($(prometheus --version 2>&1 | head -n1))"
