#!/usr/bin/env bash
# The GPU checks in one go, for a lent GPU machine whose python3 has torch but not tierclip's other dependencies:
#   1. install the wheels carried in .whl/ aside (/tmp/site): open_clip_torch, polars + polars-runtime-32, ftfy,
#      wcwidth, typer + pydantic, pydantic-core, annotated-types, typing-inspection, typing_extensions, at the
#      versions .venv holds (pyproject.toml pins), fetched here for the machine's Python (3.12 on the lent H200):
#        pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl NAME==VERSION ...
#      (torch, torchvision, numpy, pyarrow, PIL, tqdm, rich are the machine's own),
#   2. pytest -m gpu (the CUDA paths against the CPU ones, torchrun/nccl against one process); SKIP_PYTEST=1 skips it,
#   3. bench/bench_speed.py on the workload: ViT-B-32 (random init) at 224 px, a 20,000-pair pool of 256-px
#      JPEGs in shards of 10,000, bf16, $WORKERS loader workers (default: cores - 2): D, M, S, L, T, the bare step
#      and the ratios S / min(D, M) and T / min(L, bare step); ~4 min of which ~1.5 min build the pool,
#   4. with BENCH_GPU=1, bench/bench_gpu.py (RN50 beside ViT-B-32, torchrun) with any extra arguments given.
# Results in $OUT (or ./gpu-out). Budget: a lent machine has ~15 minutes of device time for everything, start-up
# included; steps 2 and 3 fit in about 8.
# Usage: bash bench/gpu_checks.sh [bench_gpu.py options...]
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
workers=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
nvidia-smi -L | tee "$out/machine.txt"
python3 -c "import torch, open_clip, polars; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'open_clip', open_clip.__version__, 'polars', polars.__version__)" | tee -a "$out/machine.txt"
if [ -z "${SKIP_PYTEST:-}" ]; then
    # The gpu test files by name: collecting the whole tree would import every dependency of the CPU tests.
    timeout 240 python3 -m pytest -m gpu -p no:cacheprovider -q -o addopts="" --timeout=200 \
        tests/train/test_ddp_gpu.py tests/curate/test_stages_clip_gpu.py 2>&1 | tee "$out/pytest_gpu.txt"
fi
timeout "${SPEED_TIMEOUT:-360}" python3 bench/bench_speed.py --out /tmp/bench-speed --device cuda --precision bf16 \
    --model ViT-B-32 --pairs 20000 --shard-size 10000 --render-size 256 --workers "$workers" --batch-size 512 \
    --model-batches 10 --decode-pairs 10000 --train-batch 256 --steps 40 --skip 10 --bare-steps 20 \
    2>&1 | grep -v "it/s\|step/s\|shard/s" | tee "$out/bench_speed.txt"
cp /tmp/bench-speed/bench_speed.json "$out/" 2>/dev/null
if [ -n "${BENCH_GPU:-}" ]; then
    timeout "${BENCH_TIMEOUT:-300}" python3 bench/bench_gpu.py --out /tmp/bench-gpu --workers "$workers" "$@" 2>&1 \
        | grep -v "it/s\|step/s\|shard/s" | tee "$out/bench_gpu.txt"
    cp /tmp/bench-gpu/bench_gpu.json "$out/" 2>/dev/null
fi
exit 0
