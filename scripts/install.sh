#!/usr/bin/env bash
# Set up Soundalike in ./.venv from the repo's own files. `--dev` adds the test tools and
# Debian's chromium for the browser tests (never `playwright install`: it downloads a browser)
# and scorched3d-data's music for the wild benchmark and the landmark tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip -q --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install -r requirements.txt
"${PIP[@]}" install --no-deps -r requirements-nodeps.txt
if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" install -r requirements-dev.txt
  # scorched3d-data: the game music (GPL-2+) the wild benchmark and the landmark tests put sounds
  # under; without it they fall back to a procedural bed, which is not what was measured
  MISSING=()
  [ -x /usr/bin/chromium ] || MISSING+=(chromium)
  [ -d /usr/share/games/scorched3d/data/globalmods/none/data/music ] || MISSING+=(scorched3d-data)
  if [ ${#MISSING[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
  fi
fi
echo "installed into .venv ($(.venv/bin/python -c 'import torch, gradio; print("torch", torch.__version__, "gradio", gradio.__version__)'))"
