#!/usr/bin/env bash
# The lecture-hall measurement in one command (docs/benchmarks.md, "A lecture hall on one laptop"):
#
#   scripts/lecture_hall.sh RUNS_DIR [BEFORE_CHECKOUT] [SESSIONS...]
#
# Trains what is missing under RUNS_DIR (the demo store: six 64 px models; slice128: the six
# runs on the shared real 3-breed slice at 128 px), then runs scripts/lecture.py at 30, 60 and
# 100 sessions (or SESSIONS) on both, with this checkout's app and, where BEFORE_CHECKOUT is
# given (a checkout of older code, e.g. /tmp/before-src; "-" for none), with that one's, the same
# way. Tables go to stdout, every figure to RUNS_DIR/lecture-*.json. Servers listen on
# 127.0.0.1 only; set PETLAB_LOAD_PORTS=FIRST-LAST to keep them in a range.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
runs="${1:?usage: scripts/lecture_hall.sh RUNS_DIR [BEFORE_CHECKOUT|-] [SESSIONS...]}"
before="${2:--}"
shift $(( $# >= 2 ? 2 : $# ))
sessions=("${@:-30 60 100}")
read -r -a sessions <<< "${sessions[*]}"
slice="$here/../shared/data/oxford-pets-3class"

[ -f "$runs/demo/multitask-scratch/model.keras" ] || "$python" "$here/train.py" --profile demo --runs-dir "$runs"
experiments=(demo)
if [ -d "$slice/images" ]; then
    [ -f "$runs/slice128/multitask-scratch/model.keras" ] || "$python" "$here/train.py" --profile quick \
        --dataset folder --data-dir "$slice" --image-size 128 --weights synthetic-pretext --name slice128 --runs-dir "$runs"
    experiments+=(slice128)
else
    echo "lecture_hall.sh: $slice is not here: the demo store only" >&2
fi
for experiment in "${experiments[@]}"; do
    for code in after before; do
        app="$here"
        if [ "$code" = before ]; then
            [ "$before" = - ] && continue
            app="$before"
        fi
        echo "== $experiment, $code ($app)"
        "$python" "$here/scripts/lecture.py" --runs-dir "$runs" --experiment "$experiment" --app-root "$app" \
            --sessions "${sessions[@]}" --json "$runs/lecture-$experiment-$code.json" || true
    done
done
