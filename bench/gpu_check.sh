#!/usr/bin/env bash
# The GPU check (issue 18), one prepared script for a machine with a CUDA GPU; under 8 minutes.
#   bash bench/gpu_check.sh        # from the repository root
# It installs what is missing (keeping the machine's CUDA build of torch), runs the `gpu` tests,
# trains a 2x512 LSTM on KJV for 5 minutes on the GPU (chars/s, then `rnnbot eval`), and times
# rnnbot against plain nn.LSTM loops on the same GPU (bench/gpu.py). Results go to $OUT (or
# /tmp/rnnbot-gpu-check) as well as the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rnnbot-gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
PY=${PYTHON:-python3}
t0=$SECONDS
phase() { echo "== $1 ($((SECONDS - t0)) s)"; }

phase "install"
if ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "gpu_check: $PY has no CUDA build of torch, or sees no GPU: nothing to check"; exit 2
fi
VENV=${VENV:-.venv-gpu}
# the machine's own torch (a CUDA build) stays: the venv sees it, and the project's other
# requirements are installed without torch's CPU pin
[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
deps=$("$VENV/bin/python" - <<'PYEOF'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(" ".join(d for d in p["dependencies"] + p["optional-dependencies"]["dev"]
               if not d.replace(" ", "").startswith("torch")))
PYEOF
)
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q --disable-pip-version-check $deps
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"

phase "gpu tests"
"$VENV/bin/pytest" -q -m gpu -p no:cacheprovider tests/models/test_gpu.py tests/models/test_device.py

phase "train 2x512 on KJV for 5 minutes on the GPU"
RUN="$OUT/kjv-gpu"
rm -rf "$RUN"
"$VENV/bin/rnnbot" train --corpus kjv --run-dir "$RUN" --device cuda --layers 2 --hidden 512 --embedding 64 \
    --dropout 0.1 --seq-len 256 --batch-size 512 --lr 4e-3 --warmup-steps 50 --max-minutes 5 --eval-every 200 \
    --log-every 50 2>&1 | grep -v "^progress:" | tail -15
"$VENV/bin/python" - "$RUN" <<'PYEOF'
import json, sys
rows = [json.loads(x) for x in open(f"{sys.argv[1]}/metrics.jsonl")]
train = [r for r in rows if r.get("kind") == "train" and r.get("chars_per_s")]
print(f"training chars/s (median of the logged intervals): {sorted(r['chars_per_s'] for r in train)[len(train) // 2]:,.0f}")
PYEOF
"$VENV/bin/rnnbot" eval --checkpoint "$RUN" --corpus kjv --device cuda

phase "rnnbot against plain nn.LSTM loops on the GPU"
"$VENV/bin/python" bench/gpu.py --device cuda --checkpoint "$RUN"
phase "done"
