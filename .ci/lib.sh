# Shared helpers of the .ci/ scripts (sourced, not run): root commands and apt installs.
# shellcheck shell=bash

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Install Debian packages; refresh the package lists only when the cached ones fail.
apt_install() {
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@")
    as_root "${install[@]}" || { as_root apt-get update -qq && as_root "${install[@]}"; }
}

# Print the first Python 3.11 or 3.12 (bytewax 0.21.1 has no wheel for 3.13) on PATH, or nothing.
# A pyenv shim may exist but fail, hence running each candidate.
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.12 python3.11 python3; do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
}
