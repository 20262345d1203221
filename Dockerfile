# syntax=docker/dockerfile:1
# gan3d service images. Serving dependencies only (no torch); the shipped bundle is copied in.
#   CPU: docker build --target cpu -t gan3d:cpu .
#   GPU: docker build --target gpu -t gan3d:gpu .
# The GPU base is pinned to CUDA 13.0 + cuDNN 9, which the onnxruntime-gpu 1.31 wheel asks for.
# The CPU target is built and run with podman by scripts/container_check.sh (no Docker engine
# on gan3d's build machine); the file is also linted and checked against pyproject.toml in the
# tests.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG ORT_GPU_VERSION=1.31.1

# ---- CPU: plain onnxruntime ---------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/gan3d
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
# the Triton client too, so that GAN3D_TRITON_URL works without another image (DL3013: '.[triton]'
# is this project; its dependency ranges live in pyproject.toml)
# hadolint ignore=DL3013
RUN pip install '.[triton]'
COPY models/gan3d-cpu ./models/gan3d-cpu
# the 64^3 bundle too: GAN3D_BUNDLE_DIR=/srv/gan3d/models/gan3d-cpu64 serves it
COPY models/gan3d-cpu64 ./models/gan3d-cpu64
RUN groupadd --gid 10001 gan3d \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gan3d
USER 10001:10001
ENV GAN3D_HOST=0.0.0.0 GAN3D_PORT=8000 GAN3D_BUNDLE_DIR=/srv/gan3d/models/gan3d-cpu \
    GAN3D_PROVIDERS='["CPUExecutionProvider"]'
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('GAN3D_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health/ready', timeout=2).status != 200)"]
CMD ["python", "-m", "app"]

# ---- GPU: onnxruntime-gpu on CUDA 13 / cuDNN 9 ----------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ARG ORT_GPU_VERSION
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /srv/gan3d
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
# onnxruntime (a default dependency) and onnxruntime-gpu share one module: re-install the GPU
# build last so that it is the one on disk (README, "GPU install"). DL3013: '.[gpu,triton]' is
# this project; its dependency ranges live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install '.[gpu,triton]' \
    && pip install --force-reinstall --no-deps "onnxruntime-gpu==${ORT_GPU_VERSION}"
COPY models/gan3d-cpu ./models/gan3d-cpu
# the 64^3 bundle too: GAN3D_BUNDLE_DIR=/srv/gan3d/models/gan3d-cpu64 serves it
COPY models/gan3d-cpu64 ./models/gan3d-cpu64
RUN groupadd --gid 10001 gan3d \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gan3d
USER 10001:10001
ENV GAN3D_HOST=0.0.0.0 GAN3D_PORT=8000 GAN3D_BUNDLE_DIR=/srv/gan3d/models/gan3d-cpu \
    GAN3D_PROVIDERS='["CUDAExecutionProvider","CPUExecutionProvider"]'
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('GAN3D_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health/ready', timeout=2).status != 200)"]
CMD ["python", "-m", "app"]
