#!/usr/bin/env bash
# Install the offline validators of the deployment artifacts (see ops/requirements-validators.txt)
# into .venv-validators, and from apt when missing: shellcheck (used by actionlint) and jq (deploy.yml
# reads `gh attestation verify --format json` with it; tests/ops runs that step).
# Idempotent: a second run with unchanged pins does nothing. tests/ops/ uses .venv-validators/bin/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-validators"
reqs="$root/ops/requirements-validators.txt"
constraints="$root/ops/constraints-validators.txt"
hcl2_reqs="$root/ops/requirements-hcl2.txt"
stamp="$venv/.installed"
# shellcheck source=.ci/lib.sh
source "$root/.ci/lib.sh"
python="${PYTHON:-$(find_python)}"
python="${python:-python3}"

want="$(cat "$reqs" "$constraints" "$hcl2_reqs" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "validators: up to date in $venv"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        # Debian's python3 needs python3-venv for ensurepip.
        if ! "$python" -m venv "$venv"; then
            rm -rf "$venv"
            bash "$root/.ci/prerequisites.sh" apt
            apt_install python3-venv
            "$python" -m venv "$venv"
        fi
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$reqs" -c "$constraints"
    rm -rf "$venv/hcl2"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$venv/hcl2" -r "$hcl2_reqs"
    echo "$want" > "$stamp"
    echo "validators: installed into $venv"
fi

if ! command -v shellcheck > /dev/null 2>&1; then
    bash "$root/.ci/prerequisites.sh" apt
    apt_install shellcheck
fi
echo "validators: shellcheck $(shellcheck --version | sed -n 's/^version: //p')"

if ! command -v jq > /dev/null 2>&1; then
    apt_install jq
fi
echo "validators: $(jq --version)"
