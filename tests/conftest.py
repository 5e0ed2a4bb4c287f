"""Test-wide settings: never touch the network, keep third-party chatter off."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Commands the tests start (`python -m tierclip.curate.cli`, torchrun, ...) import this checkout's code, also
# when the venv's editable install points at another checkout (tierclip/__init__.py finds the parts beside it).
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_CHECKOUT, os.environ.get("PYTHONPATH")) if p)
