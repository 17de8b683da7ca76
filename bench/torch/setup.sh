#!/bin/sh
# Installs the PyTorch reference for `deno task bench:compare`: Debian's python3-torch (CPU, eager)
# and the pthread OpenBLAS, without which torch's matmuls use reference BLAS (~3 GFLOP/s vs 24-63
# at 512^3 on the project's 2-core machine). PyPI is not reachable here, so no pip; peft and
# transformers are not packaged in Debian bookworm, so bench/torch/bench.py carries its own GPT-2
# and LoRA. Needs root (or sudo) and Debian's archive.
set -eu
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update
apt-cache policy python3-torch libopenblas0-pthread python3-numpy
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  python3-torch libopenblas0-pthread python3-numpy
# Debian's interpreter: a pyenv or venv python3 earlier on PATH does not see Debian's packages.
/usr/bin/python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
