"""Training-step throughput of tc-rn-tiny with open_clip's 49,408-token vocabulary vs a compact one.

Measures what a compact vocabulary (remapping the token ids a pool uses to a small range) would buy on CPU
before anyone builds it: the same model with `vocab_size` 49,408 and 1,024, the bare training step
(benchlib.bare_step: the run's AdamW, clipping and clamp) on random 32-px images and random token ids, batch 128.
Runs alternate A/B so a busy machine slows both alike. Not a test; prints one line per model.

    .venv/bin/python bench/bench_vocab.py --steps 20 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import copy

import benchlib


def build(vocab: int):
    import open_clip
    from tierclip.train.models import model_config

    cfg = copy.deepcopy(model_config("tc-rn-tiny"))
    cfg["text_cfg"]["vocab_size"] = vocab
    return open_clip.CLIP(**cfg)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {vocab: build(vocab) for vocab in (49408, 1024)}
    batches = {vocab: benchlib.random_batches(model, args.steps + 2, args.batch) for vocab, model in models.items()}
    speeds = {vocab: [] for vocab in models}
    for _ in range(args.rounds):
        for vocab, model in models.items():  # the first 2 steps of each pass are not timed
            speeds[vocab].append(benchlib.bare_step(model, batches[vocab], 2, lr=1e-3)["samples_per_s"])
    for vocab, values in speeds.items():
        params = sum(p.numel() for p in models[vocab].parameters())
        print(f"vocab {vocab:>6,}: {params / 1e6:.2f} M parameters, samples/s per round "
              f"{', '.join(f'{v:.0f}' for v in values)} (best {max(values):.0f})")


if __name__ == "__main__":
    main()
