#!/usr/bin/env bash
# VidSage: one command to set up and regenerate the paper's tables and figures.
#
#   ./reproduce.sh                 set up (first run only), then run notebooks 01-09 on the real
#                                  YouTube-8M sample in data/yt8m, writing results/ and figures/
#   ./reproduce.sh test            set up, then run the test suite (what CI runs)
#   ./reproduce.sh bench           set up, then run the benchmarks (results/benchmarks.md)
#   ./reproduce.sh setup           only create .venv, install pinned dependencies, register the kernel
#   ./reproduce.sh lab             set up, then open JupyterLab on notebooks/
#
# Options for the default (pipeline) mode:
#   --smoke        tiny parameters, everything in a few minutes
#   --force        re-run notebooks whose outputs are up to date
#   --data DIR     your own YouTube-8M-format TFRecords (directory, file or glob)
#   --only NN      run only the notebooks whose number or name matches (repeatable)
# Environment: VIDSAGE_VENV (default .venv), PYTHON (interpreter used to create it, default python3.11).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV="${VIDSAGE_VENV:-.venv}"
PY="$VENV/bin/python"

setup() {
    local base="${PYTHON:-}"
    if [[ -z "$base" ]]; then
        base="$(command -v python3.11 || command -v python3)"
    fi
    if [[ ! -x "$PY" ]]; then
        echo "[setup] creating $VENV with $base ($("$base" --version 2>&1))"
        "$base" -m venv "$VENV"
    fi
    # Re-install only when the pins changed: a stamp holds the hash of the requirement files.
    local want have=""
    want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
    [[ -f "$VENV/.vidsage-setup" ]] && have="$(cat "$VENV/.vidsage-setup")"
    if [[ "$want" != "$have" ]]; then
        echo "[setup] installing pinned dependencies from requirements.txt (first time: a few minutes)"
        "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
        "$PY" -m pip install --quiet --disable-pip-version-check --no-deps -e .
        "$PY" -m ipykernel install --sys-prefix --name vidsage --display-name "Python (VidSage)" >/dev/null
        echo "$want" > "$VENV/.vidsage-setup"
        echo "[setup] done: $("$PY" -c 'import torch, torch_geometric; print("torch", torch.__version__, "| torch_geometric", torch_geometric.__version__, "| cuda", torch.cuda.is_available())')"
    fi
}

mode="all"
case "${1:-}" in
    test|bench|setup|lab|all) mode="$1"; shift ;;
esac

setup
case "$mode" in
    setup) exit 0 ;;
    test)  exec "$PY" -m pytest "$@" ;;
    bench) exec "$PY" -m benchmarks "$@" ;;
    lab)   exec "$VENV/bin/jupyter" lab notebooks/ "$@" ;;
    all)   exec "$PY" -m vidsage_core.reproduce "$@" ;;
esac
