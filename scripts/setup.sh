#!/usr/bin/env bash
# Installs the Debian 12 packages that sdumc's build, tests, demo and benchmarks need.
# Idempotent and fast: when every package is present it does nothing (no apt-get update).
set -euo pipefail

packages=(
  gcc make pkg-config          # build
  libopenblas-dev              # GEMM (cblas) and the BLAS PyTorch uses in benchmarks
  libsndfile1-dev libsoxr-dev  # audio input: decoding (WAV, FLAC, OGG, ...) and resampling to 16 kHz
  espeak-ng sox                # speech synthesised and converted at test time (audio-features tests)
  python3-numpy python3-torch  # independent reference implementation and fixture scripts
  clang libclang-rt-14-dev     # libFuzzer harnesses, ThreadSanitizer
  libtcmalloc-minimal4         # fair PyTorch benchmark set-up (see shared docs)
  chromium                     # opens the HTML reports headless in tests (tests/scripts/test_robustness.sh)
  libopenmpi-dev openmpi-bin   # MPI build and its tests (make MPI=1, tests/scripts/test_mpi.sh)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "setup: these Debian packages are missing and this is not root: ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
