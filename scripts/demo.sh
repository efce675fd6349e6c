#!/usr/bin/env bash
# Sets everything up and runs the main job on bundled data:  bash scripts/demo.sh [flags]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec python -m scripts.demo "$@"
