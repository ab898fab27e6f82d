# Sourced by the scripts: create or reuse .venv and install mfrec into it (editable) with extras "$@".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv" >&2
    "$PY" -m venv .venv
fi
stamp=".venv/.mfrec-installed-$(cat pyproject.toml "$@" 2>/dev/null | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
    extras=""
    [ -n "${MFREC_EXTRAS:-}" ] && extras="[$MFREC_EXTRAS]"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras" >&2
    touch "$stamp"
fi
