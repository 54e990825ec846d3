#!/usr/bin/env bash
# Idempotent developer set-up for a fresh Debian/Ubuntu machine.
#
#   scripts/bootstrap.sh
#
# - apt-get installs (with sudo when not root, only what is missing):
#     python3-venv  when `python3 -m venv` cannot create a venv with pip
#     chromium      for browser tests (/usr/bin/chromium); no `playwright install`
# - creates .venv (python3 -m venv) if missing
# - installs the project (`-e '.[dev]'`) into it with uv (itself pip-installed into .venv), about ten times
#   faster than pip; pip's own configuration (index, extra indexes, find-links, constraints, certificates:
#   `pip config list`) is handed to uv, so both resolve from the same places. Falls back to pip if uv fails.
#   Only when pyproject.toml is newer than .venv/.installed-stamp (or the stamp is missing).
# - no bytecode is compiled for all of site-packages (18 s on two cores): Python writes it as modules are
#   first imported (the Makefile clears PYTHONDONTWRITEBYTECODE for its targets), so only the modules in
#   use are compiled, once. For `make test` (TOCSIN_WARM_TESTS=1), a background import of the app and a
#   test collection warm that cache after an install, while services start.
#
# Services (PostGIS, Mosquitto) are separate: scripts/services.sh start
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

log() { echo "bootstrap: $*" >&2; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_install() {
    (($# > 0)) || return 0
    command -v apt-get >/dev/null || die "need to install $*, but apt-get is not available"
    if ((${#SUDO[@]})) && ! command -v sudo >/dev/null; then
        die "need to install $* as root, but sudo is not available"
    fi
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

command -v python3 >/dev/null || die "python3 not found"

missing=()
# On Debian/Ubuntu `python3 -m venv` exists without python3-venv but fails for
# lack of ensurepip, so test for both modules.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [[ ! -x /usr/bin/chromium ]]; then
    missing+=(chromium)
fi
apt_install "${missing[@]}"
[[ -x /usr/bin/chromium ]] || log "WARNING: /usr/bin/chromium still missing; browser tests will be skipped/fail"

VENV="$REPO/.venv"
STAMP="$VENV/.installed-stamp"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    rm -f "$STAMP"
fi

[[ -f pyproject.toml ]] || die "pyproject.toml not found in $REPO"
# pip's configuration as uv arguments (one per line): uv reads neither pip.conf nor PIP_* variables.
uv_args_from_pip_config() {
    "$VENV/bin/pip" config list 2>/dev/null | "$VENV/bin/python" -c '
import shlex, sys
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}
for line in sys.stdin:
    key, _, value = line.strip().partition("=")
    option = key.rpartition(".")[2]
    if option in flags:
        for item in shlex.split(value)[0].split() if value else []:
            print(flags[option]); print(item)
'
}

pip_cert() {
    "$VENV/bin/pip" config list 2>/dev/null | sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" | head -n 1
}

install_with_uv() {
    "$VENV/bin/pip" install -q 'uv>=0.5' || return 1
    local args cert
    mapfile -t args < <(uv_args_from_pip_config)
    cert="$(pip_cert)"
    # unsafe-best-match: the newest version across every index, as pip picks (uv's default stops at the
    # first index that has the package).
    env ${cert:+SSL_CERT_FILE="$cert"} "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
        --index-strategy unsafe-best-match "${args[@]}" -e '.[dev]'
}

if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" ]]; then
    log "installing -e '.[dev]' with uv"
    if ! install_with_uv; then
        log "uv failed; installing with pip instead"
        "$VENV/bin/pip" install -q -e '.[dev]'
    fi
    touch "$STAMP"
    # `make test` sets TOCSIN_WARM_TESTS=1: warm the bytecode cache in the background while services start
    # (the app's imports, then the test modules, whose rewritten asserts pytest caches). Otherwise the first
    # test processes, starting together, each compile the same modules (about 4 s of CPU apiece).
    if [[ "${TOCSIN_WARM_TESTS:-0}" == 1 ]]; then
        (env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -c 'import tocsin.app, tocsin.cli, tocsin.worker' \
            && env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -m pytest -q --collect-only -p no:cacheprovider \
            tests) >/dev/null 2>&1 &
    fi
else
    log "dependencies up to date (pyproject.toml not newer than $STAMP)"
fi

log "done. Next: scripts/services.sh start && eval \"\$(scripts/services.sh env)\""
