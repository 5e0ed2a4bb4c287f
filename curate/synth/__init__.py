"""Synthetic image-text pools with known ground truth (`curate synth`).

scene.py (what an image shows) -> draw.py (render, encode) -> captions.py +
languages.py (describe it) -> defects.py (inject web noise) -> writer.py
(shards, meta with gt_* columns, pool.json) ; evalset.py (the held-out eval
set) ; config.py (rates and profiles) ; cli.py (the typer command).
"""
