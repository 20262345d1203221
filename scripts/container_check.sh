#!/usr/bin/env bash
# Build the CPU image and run it as a user would, with podman (Debian; no Docker engine here).
#
#   sudo bash scripts/container_check.sh        # as root; ~1-2 minutes once the packages are in
#
# 1. a stand-in for python:3.11-slim-bookworm (no registry of base images here): Debian
#    bookworm minbase with python3, venv, pip and ca-certificates (mmdebstrap), `python` on the
#    PATH and pip allowed to install system-wide, as in the official image; imported once;
# 2. `podman build --target cpu` of the Dockerfile, with the host network and the host's CA
#    certificates and pip configuration (pip inside reaches the package registry as here);
# 3. run it read-only (as the Kubernetes manifests do: a tmpfs at /tmp), wait for
#    /health/ready, send the README's sample and reconstruct requests (one photo and three),
#    check it runs as uid 10001 and its HEALTHCHECK passes, then stop it with SIGTERM and check
#    it exits 0 and promptly;
# 4. docker-compose.yml's CPU service with podman-compose (port 8000 must be free);
# 5. the image again, its networks on a real Triton server on the host (PyTriton, from
#    .venv-triton that scripts/test.sh makes): ready, and the same bytes as step 3; and the
#    image writing Triton's repository as the Kubernetes triton component's init container does.
# Not run: the GPU target (its nvidia/cuda base is on no registry this machine reaches) and the
# scale profile (its nginx image comes from Docker Hub, likewise).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18765}
BASE=localhost/python-stand-in:3.11-slim-bookworm
WORK=$(mktemp -d)
trap 'podman rm -f gan3d-check >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

missing=$(for p in podman runc mmdebstrap uidmap curl; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# runc (crun fails here on the cgroup setup), cgroupfs, no default ulimits
cat > "$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

echo "1. base image"
if ! podman image exists "$BASE"; then
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
    bookworm "$WORK/base.tar" http://deb.debian.org/debian
  podman import --change 'CMD ["python3"]' "$WORK/base.tar" "$BASE" >/dev/null
fi

echo "2. build gan3d:cpu"
mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
[ -f /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
podman build --quiet --format docker --network host "${mounts[@]}" \
  --build-arg PYTHON_IMAGE="$BASE" --target cpu -t gan3d:cpu . >/dev/null

echo "3. run, read-only"
podman rm -f gan3d-check >/dev/null 2>&1 || true
podman run -d --name gan3d-check --network host --read-only --tmpfs /tmp \
  --health-interval disable -e GAN3D_PORT="$PORT" gan3d:cpu >/dev/null
url="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  curl -sf "$url/health/ready" >/dev/null && break
  sleep 0.5
done
curl -sf "$url/health/ready"; echo
[ "$(podman exec gan3d-check id -u):$(podman exec gan3d-check id -g)" = 10001:10001 ] \
  || { echo "not running as uid:gid 10001:10001" >&2; exit 1; }
podman healthcheck run gan3d-check >/dev/null \
  || { echo "the image's HEALTHCHECK does not pass" >&2; exit 1; }
curl -sf -o "$WORK/chair.glb" "$url/v1/sample" -H 'content-type: application/json' \
  -d '{"seeds": [0], "concept": "chair", "temperature": 0.5}'
curl -sf -o "$WORK/table.glb" "$url/v1/reconstruct" -F image=@examples/table.png
curl -sf -o "$WORK/table-3.glb" "$url/v1/reconstruct" -F image=@examples/table.png \
  -F image=@examples/table-2.png -F image=@examples/table-3.png
for f in chair table table-3; do
  [ "$(head -c 4 "$WORK/$f.glb")" = glTF ] || { echo "$f.glb is not a GLB" >&2; exit 1; }
done
echo "   healthy; sample and reconstruct (1 and 3 photos) answered GLBs, as uid 10001"

echo "4. SIGTERM"
start=$(date +%s)
podman stop -t 30 gan3d-check >/dev/null
code=$(podman inspect gan3d-check --format '{{.State.ExitCode}}')
took=$(( $(date +%s) - start ))
podman logs gan3d-check 2>&1 | grep -q "Application shutdown complete" \
  || { echo "no clean shutdown in the logs" >&2; exit 1; }
[ "$code" = 0 ] && [ "$took" -lt 30 ] || { echo "exit $code after $took s" >&2; exit 1; }
echo "   stopped cleanly: exit 0 after ${took} s"

echo "5. docker-compose.yml's CPU service with podman-compose"
# Debian's podman-compose 1.0.3 has no --profile: naming the service starts it
podman-compose up -d gan3d-cpu >/dev/null 2>&1
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:8000/health/ready" >/dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:8000/health/ready" >/dev/null || { echo "compose service not ready" >&2; exit 1; }
podman-compose down >/dev/null 2>&1
echo "   up, ready on :8000, down"
echo "6. the image with its networks on a real Triton server (GAN3D_TRITON_URL, gRPC)"
# PyTriton's server on the host, serving the shipped bundle (scripts/test.sh makes .venv-triton)
[ -x .venv-triton/bin/python ] || { echo "no .venv-triton: run scripts/test.sh first" >&2; exit 1; }
.venv-triton/bin/python scripts/pytriton_bundle.py models/gan3d-cpu --http-port 18100 \
  --grpc-port 18101 --metrics-port 18102 >"$WORK/triton.log" 2>&1 &
triton_pid=$!
trap 'kill $triton_pid 2>/dev/null || true; podman rm -f gan3d-check >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:18100/v2/models/gan3d_recognizer/ready >/dev/null && break
  sleep 0.5
done
podman rm -f gan3d-check >/dev/null 2>&1 || true
podman run -d --name gan3d-check --network host --read-only --tmpfs /tmp \
  --health-interval disable -e GAN3D_PORT="$PORT" \
  -e GAN3D_TRITON_URL=grpc://127.0.0.1:18101 gan3d:cpu >/dev/null
for _ in $(seq 1 120); do
  curl -sf "$url/health/ready" >/dev/null && break
  sleep 0.5
done
curl -sf "$url/health/ready" | grep -q '"execution_provider":"triton"' \
  || { echo "not ready with Triton: $(curl -s "$url/health/ready")" >&2; exit 1; }
curl -sf -o "$WORK/chair-triton.glb" "$url/v1/sample" -H 'content-type: application/json' \
  -d '{"seeds": [0], "concept": "chair", "temperature": 0.5}'
cmp -s "$WORK/chair.glb" "$WORK/chair-triton.glb" \
  || { echo "the sample through Triton differs from the in-process one" >&2; exit 1; }
curl -sf -o "$WORK/table-triton.glb" "$url/v1/reconstruct" -F image=@examples/table.png
cmp -s "$WORK/table.glb" "$WORK/table-triton.glb" \
  || { echo "the photo through Triton differs from the in-process one" >&2; exit 1; }
podman stop -t 30 gan3d-check >/dev/null
kill "$triton_pid"; wait "$triton_pid" 2>/dev/null || true
echo "   ready through Triton; sample and reconstruct byte-identical to in-process"
# the Kubernetes triton component's init container: the image writes Triton's repository itself
configs=$(podman run --rm --read-only --tmpfs /models --network none gan3d:cpu \
  python -m training triton --bundle /srv/gan3d/models/gan3d-cpu --out /models 2>/dev/null \
  | grep -c 'config.pbtxt$')
[ "$configs" = 6 ] || { echo "the image wrote $configs Triton configs, not 6" >&2; exit 1; }
echo "   the image writes the Triton repository (6 models) read-only, without network or torch"
echo "container check passed"
