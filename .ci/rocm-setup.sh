#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what TVM 0.27's AMDGPU codegen needs to link gfx9 kernels (MFMA tests), idempotently:
# Debian's ROCm device-library bitcode (ocml/ockl, in /usr/lib/x86_64-linux-gnu/amdgcn/bitcode)
# and ld.lld >= 19 (code object v6; Debian 12's default lld 14 fails with "unknown abi version").
# Then export ROCM_PATH=/usr/lib/x86_64-linux-gnu. Usage (as root): bash .ci/rocm-setup.sh
set -euo pipefail

PACKAGES=(rocm-device-libs lld-22)
BITCODE=/usr/lib/x86_64-linux-gnu/amdgcn/bitcode

installed() {
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || return 1
  done
  [ -f "$BITCODE/ocml.bc" ] && [ -f "$BITCODE/ockl.bc" ] && command -v ld.lld-22 >/dev/null
}

if installed; then
  echo "rocm-setup: ${PACKAGES[*]} already installed"
else
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0)
  if [ "$(id -u)" != "0" ]; then APT=(sudo "${APT[@]}"); fi
  "${APT[@]}" update
  "${APT[@]}" install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null
  installed || { echo "rocm-setup: install finished but the toolchain is incomplete" >&2; exit 1; }
  echo "rocm-setup: installed ${PACKAGES[*]}"
fi
echo "rocm-setup: export ROCM_PATH=/usr/lib/x86_64-linux-gnu"
