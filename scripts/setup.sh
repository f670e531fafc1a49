#!/usr/bin/env bash
# Set up everything lhotse-triplets needs in ./.venv (Debian, Python 3.11). Safe to run twice:
# it only does work when something is missing or setup.cfg changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() {  # apt_install CMD PACKAGE: install PACKAGE when CMD is missing
  if ! command -v "$1" >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$2" >/dev/null
  fi
}
apt_install espeak-ng espeak-ng
apt_install chromium chromium   # headless browser tests of the labelling page
if ! command -v "$PY" >/dev/null 2>&1; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3.11 python3.11-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { $SUDO apt-get install -y -qq python3.11-venv >/dev/null; "$PY" -m venv .venv; }
fi

stamp=.venv/.lhotse-triplets-setup
want=$(cat setup.cfg scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip="./.venv/bin/python -m pip install -q --disable-pip-version-check"
  $pip -U pip wheel setuptools
  $pip torch==2.13.0                       # first: the local CPU wheel, no CUDA downloads
  $pip -e ".[all]"
  $pip --no-deps pyopenjtalk-plus sudachipy sudachidict-core distillmos xls-r-sqa
  echo "$want" > "$stamp"
fi
echo "lhotse-triplets is set up in $(pwd)/.venv"
