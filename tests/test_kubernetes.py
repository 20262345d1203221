"""deploy/kubernetes: the manifests rendered as a user renders them (kubectl kustomize) for the
CPU default, the GPU overlay and the optional components, and every object validated against
the Kubernetes API's JSON schemas of a named version, strictly (a misspelt field fails)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = "1.30.0"  # the version whose schemas the objects must satisfy
CRDS = {"ServiceMonitor"}  # custom resources: no schema in Kubernetes itself


def render(tmp_path: Path, overlay: str, components: tuple[str, ...] = ()) -> list[dict]:
    """kubectl kustomize of an overlay, with optional components added the way a user would:
    a kustomization of their own that names them."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize) is needed to render deploy/kubernetes"
    target = ROOT / "deploy/kubernetes" / overlay
    if components:
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(target, mine)],
            "components": [os.path.relpath(ROOT / "deploy/kubernetes/components" / c, mine)
                           for c in components],
        }))  # fmt: skip
        target = mine
    out = subprocess.run(
        [kubectl, "kustomize", str(target)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(yaml.safe_load_all(out.stdout))


def _by_kind(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects}


@pytest.mark.parametrize(
    ("overlay", "components"),
    [
        ("base", ()),
        ("overlays/gpu", ()),
        ("base", ("ingress", "servicemonitor")),
        ("base", ("triton",)),
    ],
)
def test_every_object_validates_against_the_kubernetes_schema(
    tmp_path: Path, overlay: str, components: tuple[str, ...]
) -> None:
    objects = render(tmp_path, overlay, components)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    for o in objects:
        if o["kind"] not in CRDS:
            kubernetes_validate.validate(o, KUBERNETES, strict=True)


def test_a_misspelt_field_fails_the_check(tmp_path: Path) -> None:
    deployment = _by_kind(render(tmp_path, "base"))["Deployment"]
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # readiness, misspelt
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(bad, KUBERNETES, strict=True)


def test_the_pod_is_probed_drained_and_locked_down(tmp_path: Path) -> None:
    objects = _by_kind(render(tmp_path, "base"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert pod["terminationGracePeriodSeconds"] > float(env["GAN3D_DRAIN_TIMEOUT_S"])
    assert int(env["GAN3D_MESH_WORKERS"]) == int(c["resources"]["limits"]["cpu"])
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/tmp"]
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    pdb = objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    for selector in (objects["Service"]["spec"]["selector"], pdb):
        assert selector and selector.items() <= pod_labels.items(), (selector, pod_labels)


def test_the_gpu_overlay_asks_for_a_gpu_and_one_worker(tmp_path: Path) -> None:
    pod = _by_kind(render(tmp_path, "overlays/gpu"))["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert c["image"] == "gan3d:gpu" and c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env["GAN3D_WORKERS"] == "1" and env["GAN3D_PROVIDERS"].startswith("CUDA")
    assert pod["nodeSelector"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_the_triton_component_points_gan3d_at_a_triton_it_fills(tmp_path: Path) -> None:
    """gan3d's GAN3D_TRITON_URL names the Triton Service's gRPC port, and the init container's
    command writes the repository from the bundle in the gan3d image, which has no torch."""
    objects = render(tmp_path, "base", ("triton",))
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    service = next(
        o for o in objects if o["kind"] == "Service" and "triton" in o["metadata"]["name"]
    )
    (gan3d,) = deployments["gan3d"]["spec"]["template"]["spec"]["containers"]
    url = {e["name"]: e["value"] for e in gan3d["env"]}["GAN3D_TRITON_URL"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert url == f"grpc://{service['metadata']['name']}:{ports['grpc']}"
    triton_pod = deployments["gan3d-triton"]["spec"]["template"]["spec"]
    assert service["spec"]["selector"].items() <= (
        deployments["gan3d-triton"]["spec"]["template"]["metadata"]["labels"].items()
    )
    (init,) = triton_pod["initContainers"]
    (server,) = triton_pod["containers"]
    assert "--model-repository=/models" in server["args"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    # the init container's command, here, with torch made unimportable as in the image
    cmd = init["command"]
    assert cmd[:4] == ["python", "-m", "training", "triton"]
    here = {"/models": str(tmp_path / "repo")}  # the image's paths -> this checkout's
    args = [here.get(a, a.replace("/srv/gan3d/", f"{ROOT}/")) for a in cmd[4:]]
    code = (
        "import runpy, sys; sys.modules['torch'] = None; "
        f"sys.argv = ['training', 'triton', *{args!r}]; runpy.run_module('training', "
        "run_name='__main__')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert len(list((tmp_path / "repo").glob("gan3d_*/config.pbtxt"))) == 6
