#!/usr/bin/env bash
# Check the README's prerequisites in a second or two, before anything slow starts, and name the fix
# in one line when one is missing. Usage:
#   .ci/prerequisites.sh python    print the Python 3.11/3.12 to build .venv with (installs its venv
#                                  module from apt when only that is missing)
#   .ci/prerequisites.sh all       Python, then PostgreSQL and Redis answer where the tests look and
#                                  their server binaries (tests start private instances) are installed
#   .ci/prerequisites.sh apt       root or sudo is available (only asked when something must be installed)
set -euo pipefail
# shellcheck source=.ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fail() {
    printf 'prerequisite missing: %s\n' "$1" >&2
    exit 1
}

# host and port of a URL such as postgresql://user@host:port/db (defaults when absent)
host_port() {
    local rest=${1#*://}
    rest=${rest#*@}
    rest=${rest%%/*}
    local host=${rest%:*} port=${rest##*:}
    [[ $rest == *:* ]] || { host=$rest; port=$2; }
    printf '%s %s\n' "${host:-127.0.0.1}" "$port"
}

answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

check_apt() {
    [[ "$(id -u)" -eq 0 ]] || command -v sudo > /dev/null ||
        fail "neither root nor sudo, needed once to install test tools from apt. Fix: run as root, or install sudo"
    command -v apt-get > /dev/null ||
        fail "no apt-get: install prometheus, promtool and shellcheck by hand (see .ci/install-prometheus.sh)"
}

check_python() {
    local python
    python=$(find_python)
    [[ -n $python ]] ||
        fail "Python 3.11 or 3.12 (bytewax 0.21.1 has no wheel for 3.13). Fix: sudo apt-get install python3.12 python3.12-venv, or make ... PYTHON=/path/to/python3.12"
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        check_apt
        local version
        version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python$version-venv" > /dev/null || apt_install python3-venv > /dev/null
    fi
    printf '%s\n' "$python"
}

check_all() {
    check_python > /dev/null
    local pg=${RTEP_TEST_ADMIN_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}
    local redis=${RTEP_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
    local host port
    read -r host port < <(host_port "$pg" 5432)
    compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' > /dev/null ||
        fail "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl). Fix: sudo apt-get install postgresql"
    answers "$host" "$port" ||
        fail "PostgreSQL does not answer at $host:$port (RTEP_TEST_ADMIN_DSN). Fix: sudo service postgresql start"
    read -r host port < <(host_port "$redis" 6379)
    command -v redis-server > /dev/null ||
        fail "redis-server. Fix: sudo apt-get install redis-server"
    answers "$host" "$port" ||
        fail "Redis does not answer at $host:$port (RTEP_TEST_REDIS_URL). Fix: sudo service redis-server start"
    echo "prerequisites: Python, PostgreSQL at ${pg#*@}, Redis at ${redis#*//}: ok"
}

case "${1:-}" in
    python) check_python ;;
    all) check_all ;;
    apt) check_apt ;;
    *) fail "usage: $0 python|all|apt" ;;
esac
