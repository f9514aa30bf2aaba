#!/usr/bin/env bash
# Idempotent set-up: Debian packages (when root or with sudo), a virtualenv in .venv,
# and the pinned requirements. Usage: scripts/bootstrap.sh app|test
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${1:-app}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

APP_APT=(python3-venv)
# The ncnn wrappers' compiled modules (imported only by the tests that compare our
# output with theirs) need libvulkan1 + libomp5; mesa gives them a software Vulkan device.
# postgresql: the job-queue tests start a throwaway server with its initdb and pg_ctl.
TEST_APT=(python3-venv libvulkan1 libomp5 mesa-vulkan-drivers postgresql)
# Browser tests (tests/e2e) drive Debian's Chromium with Playwright; Playwright's own
# browser downloads are never used.
TEST_APT+=(chromium fonts-liberation)

apt_packages() {
  local wanted=("$@") missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo ">> installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo ">> installing Debian packages with sudo: ${missing[*]}"
    sudo sh -c "$line"
  else
    echo "Missing Debian packages. Run this first, then try again:" >&2
    echo "  sudo sh -c '$line'" >&2
    exit 1
  fi
}

if command -v dpkg-query >/dev/null; then
  if [ "$PROFILE" = test ]; then apt_packages "${TEST_APT[@]}"; else apt_packages "${APP_APT[@]}"; fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo ">> creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

FILES=(requirements.txt requirements-nodeps.txt)
[ "$PROFILE" = test ] && FILES+=(requirements-dev.txt)
STAMP="$VENV/.installed-$PROFILE-$(cat "${FILES[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo ">> installing Python requirements ($PROFILE)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first, so nothing else pulls a different build.
  "$VENV/bin/python" -m pip install -q "$(grep -E '^torch==' requirements.txt)" "$(grep -E '^torchvision==' requirements.txt)"
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  if [ "$PROFILE" = test ]; then "$VENV/bin/python" -m pip install -q -r requirements-dev.txt; fi
  # Last, so pip's resolver never sees their undeclared-on-purpose dependencies.
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
  # The deoldify wheel overwrote fastai with its vendored 1.0.56: put the pinned one back.
  "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$(grep -E '^fastai==' requirements.txt)"
  touch "$STAMP"
fi
echo ">> environment ready ($PROFILE)"
