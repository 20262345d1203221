#!/usr/bin/env bash
# Install everything the tests need into ./.venv and run them. The README's test command.
# torch==2.13.0 is pinned here because on gan3d's build machines pip takes that CPU wheel from
# local disk in seconds (an unpinned torch pulls a multi-GB CUDA build); elsewhere it is an
# ordinary PyPI release. Any torch >= 2.4 works for training (pyproject extra `train`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use: Chromium for the browser tests (Playwright cannot download its
# own browser here), assimp-utils (AC3D conversion of real models) and libosmesa6 (headless
# OpenGL for pyrender's photo-like renders); python3-venv and libpython3.11 for the Triton
# server the tests start (below).
DEBIAN_PACKAGES="chromium assimp-utils libosmesa6 curl python3-venv libpython3.11"
missing=$(for p in $DEBIAN_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "missing Debian packages: run 'sudo apt-get install $missing' first" >&2
    exit 1
  fi
fi
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check torch==2.13.0 -e '.[train,dev]'
# pyrender pins PyOpenGL 3.1.0, whose OSMesa platform is broken; 3.1.10 works (pip prints a
# dependency-conflict notice and exits 0)
pip install -q --disable-pip-version-check 'PyOpenGL==3.1.10'
# kubectl renders deploy/kubernetes for tests/test_kubernetes.py (its kustomize v5; this
# machine image has it; Debian's kubernetes-client is too old for the manifests' components)
command -v kubectl >/dev/null || echo "kubectl not found: tests/test_kubernetes.py will fail" >&2
# A real Triton Inference Server for tests/app/test_triton.py: PyTriton's wheel bundles the
# server binary; its Python-backend stub loads the interpreter's shared library and needs
# numpy < 2, so it gets its own environment on Debian's python3 (3.11 with libpython3.11.so;
# pyenv's interpreters are built without the shared library)
[ -x .venv-triton/bin/python ] || /usr/bin/python3 -m venv .venv-triton
.venv-triton/bin/pip install -q --disable-pip-version-check nvidia-pytriton==0.7.0 \
  'onnxruntime>=1.20'
export GAN3D_TRITON_PYTHON="$PWD/.venv-triton/bin/python"
# npm tools for the tests: the Khronos glTF validator, the Compose specification's schema.
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
