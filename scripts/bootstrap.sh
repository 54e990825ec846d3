#!/usr/bin/env bash
# Idempotent developer set-up for a fresh Debian/Ubuntu machine.
#
#   scripts/bootstrap.sh
#
# - apt-get installs (with sudo when not root, only what is missing):
#     python3-venv  when `python3 -m venv` cannot create a venv with pip
#     chromium      for browser tests (/usr/bin/chromium); no `playwright install`
# - creates .venv (python3 -m venv) if missing
# - runs `.venv/bin/pip install -q -e '.[dev]'` (bytecode compiled after, in parallel) only when pyproject.toml is newer
#   than .venv/.installed-stamp (or the stamp is missing)
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
if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" ]]; then
    log "pip install -e '.[dev]'"
    # Bytecode is compiled afterwards on every core: pip compiles file by file on one.
    "$VENV/bin/pip" install -q --no-compile -e '.[dev]'
    "$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" >/dev/null \
        || log "some installed files did not compile; ignored, as pip ignores them"
    touch "$STAMP"
else
    log "dependencies up to date (pyproject.toml not newer than $STAMP)"
fi

log "done. Next: scripts/services.sh start && eval \"\$(scripts/services.sh env)\""
