#!/usr/bin/env bash
# Runs scripts/gpu_compare.py on a machine with an NVIDIA GPU, PyTorch and no Rust toolchain.
#
# Here (a machine with the toolchain), once:
#   cargo build --release -p bench-harness --bin adaprec
#   echo /.gl/ >> .git/info/exclude; mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
# Then copy the repository with target/release/adaprec and .gl/ to the GPU machine and run
#   bash scripts/gpu_compare.sh
# It unpacks the Vulkan loader, points it at NVIDIA's ICD when the default search finds
# none, prints the adapter wgpu picks, and runs the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ADAPREC:-target/release/adaprec}
[ -x "$BIN" ] || { echo "no $BIN: build it with cargo build --release -p bench-harness" >&2; exit 1; }
if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] \
    && [ ! -d /usr/share/vulkan/icd.d ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg}; mkdir -p -m 700 "$XDG_RUNTIME_DIR"
"$BIN" gpu
PYTHONUNBUFFERED=1 python3 scripts/gpu_compare.py --adaprec "$BIN" "$@"
