#!/usr/bin/env bash
# CI step: validate the asv suite and run every benchmark once on the installed tree.
# Fails (non-zero) if `asv check` finds a problem or any benchmark errors or times out.
# Usage (repository root, fastconv built in place or pip-installed): .ci/asv_quick.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# asv asks for machine details once; --yes records the detected defaults (no prompt in CI).
asv machine --yes > /dev/null

asv check --python=same

# --quick: one call per benchmark and parameter set; results are not saved (no commit hash given).
# asv exits 2 when any benchmark failed; per-benchmark `timeout`s bound the pass.
start=$(date +%s)
asv run --python=same --quick --show-stderr --durations 10 "$@"
echo "asv quick pass: $(( $(date +%s) - start )) s"
