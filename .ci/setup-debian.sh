#!/usr/bin/env bash
# Install the Debian packages the tests need (listed one per line in .ci/debian-packages.txt, `#` comments)
# when some are missing. Needs root or passwordless sudo; otherwise prints the one command to run and exits 1,
# so `just test` stops before pytest instead of failing tests one by one.
# Usage: setup-debian.sh [--optional] [PACKAGE_LIST]   (default: .ci/debian-packages.txt next to this script)
# Packages are installed without their recommended ones. --optional: packages something can do without (the
# real-image pool's sources): without root they are skipped with one line (exit 0).
set -euo pipefail
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi
list=${1:-"$(dirname "$0")/debian-packages.txt"}
[ -r "$list" ] || { echo "error: $list: no such package list" >&2; exit 1; }
# Package names: strip comments and blanks.
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$' || true)
missing=()
for pkg in "${wanted[@]}"; do
  # `dpkg-query -W` prints the status; only "install ok installed" counts (removed-but-configured does not).
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  sudo_=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_=(sudo -n)
elif [ "$optional" = 1 ]; then
  echo "skipping the Debian packages ${missing[*]}: not root and no passwordless sudo (to add them: sudo apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 0
else
  echo "error: missing Debian packages the tests need; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
install_args=(-y -qq --no-install-recommends)
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
"${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install "${install_args[@]}" "${missing[@]}"
