#!/usr/bin/env bash
# Spoken CLEVR prompts from LLaVA-OneVision-1.5-Instruct-Data. Usage: run.sh [OUT_DIR] [OVERRIDES...]
# Resumable: run it again with the same OUT_DIR after an interruption.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-clevr-spoken}; shift || true
lhotse-triplets run "$here/config.yaml" -o "$out" "$@"
echo "NeMo data config for SALM training: $out/export/nemo_data.yaml"
