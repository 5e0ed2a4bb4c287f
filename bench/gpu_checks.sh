#!/usr/bin/env bash
# The GPU checks in one go, for a lent GPU machine whose python3 has torch but not tierclip's other dependencies:
#   1. install the wheels carried in .whl/ aside (/tmp/site): open_clip_torch, polars + polars-runtime-32, ftfy,
#      wcwidth, typer + pydantic, pydantic-core, annotated-types, typing-inspection, typing_extensions, at the
#      versions .venv holds (pyproject.toml pins), fetched here for the machine's Python (3.12 on the lent H200):
#        pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl NAME==VERSION ...
#      (torch, torchvision, numpy, pyarrow, PIL, tqdm, rich are the machine's own),
#   2. pytest -m gpu (the CUDA paths against the CPU ones, torchrun/nccl against one process),
#   3. bench/bench_gpu.py (throughput), results in $OUT (or ./gpu-out).
# Usage: bash bench/gpu_checks.sh [bench_gpu.py options...]
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/machine.txt"
python3 -c "import torch, open_clip, polars; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'open_clip', open_clip.__version__, 'polars', polars.__version__)" | tee -a "$out/machine.txt"
# The gpu test files by name: collecting the whole tree would import every dependency of the CPU tests.
timeout 300 python3 -m pytest -m gpu -p no:cacheprovider -q -o addopts="" --timeout=240 \
    tests/train/test_ddp_gpu.py tests/curate/test_stages_clip_gpu.py 2>&1 | tee "$out/pytest_gpu.txt"
timeout "${BENCH_TIMEOUT:-300}" python3 bench/bench_gpu.py --out /tmp/bench-gpu "$@" 2>&1 | grep -v "it/s\|step/s\|shard/s" | tee "$out/bench_gpu.txt"
cp /tmp/bench-gpu/bench_gpu.json "$out/" 2>/dev/null
exit 0
