#!/usr/bin/env bash
# Set up everything lhotse-triplets needs in ./.venv (Debian, Python 3.11). Safe to run twice:
# it only does work when something is missing or setup.cfg, this script or the lock changed.
#
# Python packages are installed at the versions of requirements/constraints.txt (a pip freeze of
# an environment where the tests passed), so every fresh machine gets the same environment.
#   bash scripts/setup.sh                  # install ./.venv from the lock
#   bash scripts/setup.sh --refresh-lock   # re-resolve the newest versions setup.cfg allows, in
#                                          # a throw-away venv, and rewrite the lock from it
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
LOCK=requirements/constraints.txt
# Installed without their dependencies (they would pull torchaudio or conflicting pins;
# resemblyzer: the webrtcvad sdist, whose module webrtcvad-wheels provides, and `typing`).
NO_DEPS="pyopenjtalk-plus sudachipy sudachidict-core distillmos xls-r-sqa resemblyzer"

apt_install() {  # apt_install CMD PACKAGE: install PACKAGE when CMD is missing
  if ! command -v "$1" >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$2" >/dev/null
  fi
}
make_venv() {  # make_venv DIR
  "$PY" -m venv "$1" || { $SUDO apt-get install -y -qq python3.11-venv >/dev/null; "$PY" -m venv "$1"; }
}
install_all() {  # install_all VENV [-c LOCK]: torch first, then the package with all extras
  local pip="$1/bin/python -m pip install -q --disable-pip-version-check"; shift
  $pip "$@" -U pip wheel setuptools
  $pip torch==2.13.0                       # first: the local CPU wheel, no CUDA downloads
  $pip "$@" -e ".[all]"
  $pip "$@" --no-deps $NO_DEPS
}

if ! command -v "$PY" >/dev/null 2>&1; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3.11 python3.11-venv >/dev/null
fi

if [ "${1:-}" = "--refresh-lock" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  make_venv "$tmp/venv"
  install_all "$tmp/venv"                  # no constraints: the newest that setup.cfg allows
  {
    echo "# pip constraints for scripts/setup.sh: the whole environment, pinned (pip freeze)."
    echo "# Refresh: bash scripts/setup.sh --refresh-lock (see requirements/README.md)."
    echo "# torch is installed first as torch==2.13.0 (the local CPU wheel); pinned here without"
    echo "# its local +cpu tag so that this file never makes pip look for another build of it."
    "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable --disable-pip-version-check \
      | sed -E 's/^(torch|torchvision)==([^+]*)\+.*/\1==\2/' | grep -v '^-e '
  } > "$LOCK"
  echo "wrote $LOCK ($(grep -vc '^#' "$LOCK") packages); now run the tests: bash scripts/setup.sh && .venv/bin/python -m pytest -q -rs tests"
  exit 0
fi

apt_install espeak-ng espeak-ng
apt_install chromium chromium   # headless browser tests of the labelling page
if [ ! -x .venv/bin/python ]; then
  make_venv .venv
fi

stamp=.venv/.lhotse-triplets-setup
want=$(cat setup.cfg scripts/setup.sh "$LOCK" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  install_all .venv -c "$LOCK"
  echo "$want" > "$stamp"
fi
echo "lhotse-triplets is set up in $(pwd)/.venv"
