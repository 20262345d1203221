#!/usr/bin/env bash
# Does the working tree train and export exactly what COMMIT does? For refactors that must not
# change behaviour (issue 33): the tiny preset is built, trained, given a segmenter and exported
# by both, and every bundle file is compared by sha256. Timings in metrics.json and the card's
# commands and module paths differ by nature; everything else must match. ~1 minute.
#
#   bash scripts/same_export.sh a5f6809          # e.g. the commit before the re-layout
set -euo pipefail
COMMIT=${1:?usage: scripts/same_export.sh COMMIT}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/then" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git -C "$ROOT" worktree add -q "$WORK/then" "$COMMIT"

export_tiny() {  # $1: source tree, $2: output folder
  local out=$2
  mkdir -p "$out"
  (
    cd "$1"
    export PYTHONHASHSEED=0
    "$PY" -m training data --preset tiny --root "$out/data" --workers 1
    "$PY" -m training train --preset tiny --run-dir "$out/run" --root "$out/data"
    "$PY" -m training segmenter --run-dir "$out/run" --root "$out/data" --steps 20
    "$PY" -m training export --run-dir "$out/run" --root "$out/data" --out "$out/bundle" \
      --judge-steps 50 --version 0.0.0 --name same
  ) > "$out/log.txt" 2>&1 || { tail -20 "$out/log.txt"; exit 1; }
  (cd "$out/bundle" && find . -type f ! -name MODEL_CARD.md ! -name manifest.json \
    ! -name metrics.json | sort | xargs sha256sum)
  "$PY" - "$out/bundle/metrics.json" <<'PY'
import json, sys
def timeless(x):  # timings differ run to run: everything else must match
    if isinstance(x, dict):
        return {k: timeless(v) for k, v in x.items() if "seconds" not in k}
    return [timeless(v) for v in x] if isinstance(x, list) else x
print(json.dumps(timeless(json.load(open(sys.argv[1]))), sort_keys=True, indent=1))
PY
}

export_tiny "$WORK/then" "$WORK/a" > "$WORK/a.txt"
export_tiny "$ROOT" "$WORK/b" > "$WORK/b.txt"
if diff "$WORK/a.txt" "$WORK/b.txt"; then
  echo "same export as $COMMIT: $(grep -c ' ./' "$WORK/a.txt") files and the metrics"
else
  echo "the export differs from $COMMIT (above)" >&2
  exit 1
fi
