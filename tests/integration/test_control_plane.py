"""The local control plane is a real Kubernetes API: controllers, scheduler, garbage collection,
validation, RBAC, service-account tokens, CRDs with CEL rules, defaults and server-side apply.

Runs against the session `cluster` fixture (tests/conftest.py); each test gets its own namespace.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from localcluster import cluster as localcluster
from localcluster import handles

pytestmark = pytest.mark.cluster

T = TypeVar("T")


def deployment(name: str, replicas: int = 2) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
                },
            },
        }
    )


def get_json(cluster: handles.Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def wait_until(what: str, probe: Callable[[], T], done: Callable[[T], bool]) -> T:
    """Poll `probe` until `done(value)`; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + 60.0
    while not done(value := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within 60s; last seen: {value!r}")
        time.sleep(0.2)
    return value


def test_deployment_becomes_available_with_ready_pods_on_the_kwok_node(
    cluster: handles.Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", replicas=2))

    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s"
    )

    pods = get_json(cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    kwok_node = localcluster.kwok_node()["metadata"]["name"]
    assert len(pods) == 2
    for pod in pods:
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert pod["spec"]["nodeName"] == kwok_node
        assert pod["status"]["phase"] == "Running"
        assert ready["Ready"] == "True"
        assert pod["status"]["podIP"]


def test_deleting_a_deployment_garbage_collects_its_replicaset_and_pods(
    cluster: handles.Cluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", replicas=2))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s"
    )
    owned = cluster.kubectl("get", "rs,pods", "-n", namespace, "-l", "app=web", "-o", "name")
    assert owned.stdout.count("replicaset.apps/") == 1
    assert owned.stdout.count("pod/") == 2

    cluster.kubectl("delete", "-n", namespace, "deployment/web", "--cascade=background")

    def owned_objects() -> str:
        listing = cluster.kubectl("get", "rs,pods", "-n", namespace, "-l", "app=web", "-o=name")
        return listing.stdout.strip()

    wait_until("garbage collection of the ReplicaSet and its Pods", owned_objects, lambda s: not s)


def test_api_server_rejects_a_deployment_without_selector_naming_the_field(
    cluster: handles.Cluster, namespace: str
) -> None:
    manifest = json.loads(deployment("no-selector"))
    del manifest["spec"]["selector"]

    # --validate=false: no client-side check, so the rejection comes from the API server.
    result = cluster.kubectl(
        "create",
        "-n",
        namespace,
        "--validate=false",
        "-f",
        "-",
        input=json.dumps(manifest),
        check=False,
    )

    assert result.returncode != 0
    assert 'The Deployment "no-selector" is invalid' in result.stderr
    assert "spec.selector: Required value" in result.stderr
    absent = cluster.kubectl("get", "-n", namespace, "deployment/no-selector", check=False)
    assert "NotFound" in absent.stderr


def test_api_server_rejects_a_field_of_the_wrong_type_naming_the_field(
    cluster: handles.Cluster, namespace: str
) -> None:
    manifest = json.loads(deployment("bad-type"))
    manifest["spec"]["replicas"] = "two"

    result = cluster.kubectl(
        "create",
        "-n",
        namespace,
        "--validate=false",
        "-f",
        "-",
        input=json.dumps(manifest),
        check=False,
    )

    assert result.returncode != 0
    assert "spec.replicas" in result.stderr


def test_service_account_tokens_authenticate_and_rbac_denies_what_no_role_grants(
    cluster: handles.Cluster, namespace: str, tmp_path: Path
) -> None:
    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["users"][0]["user"] = {"token": token}
    as_default = tmp_path / "default-sa.kubeconfig"
    as_default.write_text(yaml.safe_dump(kubeconfig))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(cluster.kubectl_path), f"--kubeconfig={as_default}", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)

    whoami = kubectl("auth", "whoami", "-o", "json")
    denied = kubectl("get", "pods", "-n", namespace)

    assert whoami.returncode == 0, whoami.stderr
    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{namespace}:default"
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


@pytest.fixture
def widget_crd(cluster: handles.Cluster) -> Iterator[str]:
    """A cluster-scoped CRD with a unique group (CRDs are global; other sessions may run)."""
    group = f"t{uuid.uuid4().hex[:8]}.test.corral.dev"
    spec_schema = {
        "type": "object",
        "properties": {
            "size": {"type": "integer"},
            "color": {"type": "string", "default": "blue"},
        },
        "x-kubernetes-validations": [
            {"rule": "self.size <= 5", "message": "size must be at most 5"}
        ],
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema},
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")
    yield group
    cluster.kubectl("delete", f"crd/widgets.{group}", "--wait=false")


def test_custom_resources_get_cel_validation_defaults_and_server_side_apply(
    cluster: handles.Cluster, namespace: str, widget_crd: str
) -> None:
    def widget(size: int) -> str:
        return json.dumps(
            {
                "apiVersion": f"{widget_crd}/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"size": size},
            }
        )

    too_big = cluster.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", input=widget(9), check=False
    )
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=corral-test",
        "-n",
        namespace,
        "-f",
        "-",
        input=widget(3),
    )
    stored = get_json(cluster, f"widgets.{widget_crd}/w", "-n", namespace, "--show-managed-fields")

    assert too_big.returncode != 0
    assert "size must be at most 5" in too_big.stderr
    assert stored["spec"] == {"size": 3, "color": "blue"}
    managers = {(f["manager"], f["operation"]) for f in stored["metadata"]["managedFields"]}
    assert ("corral-test", "Apply") in managers
