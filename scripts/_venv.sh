# Sourced by the scripts: create or reuse .venv and install mfrec into it (editable) with extras "$@".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}

# pip, quiet, without the "Location ... is ignored" lines some machines' pip configuration prints
pip_quiet() {
    local rc
    set +e
    .venv/bin/python -m pip -q --disable-pip-version-check "$@" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2
    rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv" >&2
    "$PY" -m venv .venv
fi
stamp=".venv/.mfrec-installed-$(cksum < pyproject.toml | cut -d' ' -f1)-${MFREC_EXTRAS:-core}"
if [ ! -f "$stamp" ]; then
    extras=""
    [ -n "${MFREC_EXTRAS:-}" ] && extras="[$MFREC_EXTRAS]"
    echo "installing mfrec${extras} and its dependencies into .venv" >&2
    pip_quiet install -e ".$extras"
    touch "$stamp"
fi
