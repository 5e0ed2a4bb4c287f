"""Training-step throughput of tc-rn-tiny with open_clip's 49,408-token vocabulary vs a compact one.

Measures what a compact vocabulary (remapping the token ids a pool uses to a small range) would buy on CPU
before anyone builds it: the same model with `vocab_size` 49,408 and 1,024, AdamW + ClipLoss steps on random
32-px images and random token ids (eot = the highest id, as open_clip's argmax pooling needs), batch 128.
Runs alternate A/B so a busy machine slows both alike. Not a test; prints one line per model.

    .venv/bin/python bench/bench_vocab.py --steps 20 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import time


def build(vocab: int):
    import open_clip
    from tierclip.train.models import model_config

    cfg = copy.deepcopy(model_config("tc-rn-tiny"))
    cfg["text_cfg"]["vocab_size"] = vocab
    return open_clip.CLIP(**cfg)


def steps_per_second(model, vocab: int, steps: int, batch: int) -> float:
    import torch
    from open_clip.loss import ClipLoss

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.1)
    loss_fn = ClipLoss()
    images = torch.randn(batch, 3, 32, 32)
    text = torch.randint(1, vocab - 1, (batch, 16))
    text[:, -1] = vocab - 1  # end of text: the highest id
    started = time.perf_counter()
    for _ in range(steps):
        image_features, text_features, scale = model(images, text)
        loss = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - started)


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
    for vocab, model in models.items():  # warm-up
        steps_per_second(model, vocab, 2, args.batch)
    speeds = {vocab: [] for vocab in models}
    for _ in range(args.rounds):
        for vocab, model in models.items():
            speeds[vocab].append(steps_per_second(model, vocab, args.steps, args.batch))
    for vocab, values in speeds.items():
        params = sum(p.numel() for p in models[vocab].parameters())
        print(f"vocab {vocab:>6,}: {params / 1e6:.2f} M parameters, samples/s per round "
              f"{', '.join(f'{v:.0f}' for v in values)} (best {max(values):.0f})")


if __name__ == "__main__":
    main()
