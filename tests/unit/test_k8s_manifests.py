"""deploy/k8s, rendered offline (base and every overlay): valid Kubernetes objects, KEDA
ScaledObjects that KEDA accepts, every consumer group scaled by the Deployment that consumes
it, and probes and settings that match what the processes serve and read."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from composition.roles import ROLES, check_groups, consumer_groups
from convmem.delivery.provisioning import topic_specs
from convmem.settings import (
    CommonSettings,
    IndexerSettings,
    IngestSettings,
    ResponderSettings,
    RetentionSettings,
    SenderSettings,
    load,
)
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from tests.kustomize import Resource, build

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
FOLDERS = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]
KUBERNETES = "1.31.0"  # one of the schema versions kubernetes-validate ships: fixed, so results never drift
SETTINGS: dict[str, type[CommonSettings]] = {"ingest": IngestSettings, "indexer": IndexerSettings,
                                             "responder": ResponderSettings, "retention": RetentionSettings,
                                             "sender": SenderSettings}
# The Secret `convmem-secrets` (never committed); values here only let the settings load.
SECRET_KEYS = {"CONVMEM_DATABASE_URL": "postgresql://convmem@postgres:5432/convmem",
               "CONVMEM_JWT_SECRET": "j" * 32, "CONVMEM_WHATSAPP_APP_SECRET": "app-secret",
               "CONVMEM_WHATSAPP_VERIFY_TOKEN": "verify-token", "CONVMEM_WHATSAPP_ACCESS_TOKEN": "access-token",
               "CONVMEM_LLM_API_KEY": "llm-key"}
# Fixed interface (issue 11): worker-only roles serve /metrics, /healthz, /readyz on CONVMEM_OPS_PORT.
OPS_PORT_DEFAULT = 9464
SCALED_OBJECT_FIELDS = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
                        "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}
KAFKA_TRIGGER_REQUIRED = {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}
IMAGE_USER = int(next(line.split()[1].split(":")[0] for line in (ROOT / "Dockerfile").read_text().splitlines()
                      if line.startswith("USER ")))


@pytest.fixture(params=FOLDERS, ids=[str(f.relative_to(K8S)) for f in FOLDERS], scope="module")
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    folder: Path = request.param
    return build(folder)


def _of(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def _config(resources: list[Resource]) -> dict[str, str]:
    [config] = [r for r in _of(resources, "ConfigMap") if r["metadata"]["name"] == "convmem-config"]
    data: dict[str, str] = config["data"]
    return data


def _container(deployment: Resource) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return typing.cast(dict[str, Any], container)


def _role_and_groups(deployment: Resource) -> tuple[str, list[str] | None]:
    args = _container(deployment)["args"]
    assert args[:1] == ["run"] and args[1] in ROLES, args
    if "--groups" in args:
        assert len(args) == 4 and args[2] == "--groups", args  # one comma-separated value
        return args[1], args[3].split(",")
    assert len(args) == 2, args
    return args[1], None


def _kafka_hpa(so: Resource) -> Resource:
    """The HorizontalPodAutoscaler KEDA makes of a ScaledObject (one external metric per
    trigger), so the scaling bounds and behaviour are checked against the Kubernetes schema."""
    spec = so["spec"]
    metrics = [{"type": "External", "external": {
        "metric": {"name": f"s{i}-kafka-{t['metadata']['topic']}",
                   "selector": {"matchLabels": {"scaledobject.keda.sh/name": so["metadata"]["name"]}}},
        "target": {"type": "AverageValue", "averageValue": t["metadata"]["lagThreshold"]}}}
        for i, t in enumerate(spec["triggers"])]
    hpa: Resource = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                     "metadata": {"name": f"keda-hpa-{so['metadata']['name']}"},
                     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": spec["scaleTargetRef"]["name"]},
                              "minReplicas": spec["minReplicaCount"], "maxReplicas": spec["maxReplicaCount"],
                              "metrics": metrics}}
    behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is not None:
        hpa["spec"]["behavior"] = behavior
    return hpa


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(K8S)) for f in FOLDERS])
def test_the_offline_renderer_agrees_with_kubectl_kustomize(folder: Path) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True,  # noqa: S603, S607
                         check=True, timeout=60).stdout
    theirs = {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(out) if r}
    ours = {(r["kind"], r["metadata"]["name"]): r for r in build(folder)}
    assert ours == theirs


def test_every_resource_is_valid_against_the_kubernetes_schemas(rendered: list[Resource]) -> None:
    kinds = {r["kind"] for r in rendered}
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ScaledObject"} <= kinds
    for r in rendered:
        if r["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(_kafka_hpa(r), KUBERNETES, strict=True)
        else:
            kubernetes_validate.validate(r, KUBERNETES, strict=True)
    # The check has teeth: a misspelt field is refused.
    broken = copy.deepcopy(_of(rendered, "Deployment")[0])
    _container(broken)["readinesProbe"] = _container(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_scaled_objects_have_what_keda_requires(rendered: list[Resource]) -> None:
    deployments = {d["metadata"]["name"] for d in _of(rendered, "Deployment")}
    partitions = {spec.name: spec.partitions for spec in topic_specs()}
    config = _config(rendered)
    scaled = _of(rendered, "ScaledObject")
    assert scaled
    for so in scaled:
        name, spec = so["metadata"]["name"], so["spec"]
        assert so["apiVersion"] == "keda.sh/v1alpha1", name
        assert set(spec) <= SCALED_OBJECT_FIELDS, f"{name}: unknown fields {set(spec) - SCALED_OBJECT_FIELDS}"
        assert spec["scaleTargetRef"]["name"] in deployments, name
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment", name
        assert spec["triggers"], name
        topics = []
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka", name
            assert KAFKA_TRIGGER_REQUIRED <= set(meta), f"{name}: missing {KAFKA_TRIGGER_REQUIRED - set(meta)}"
            # The CRD types metadata as a map of strings: a bare number in YAML is refused.
            assert all(isinstance(v, str) for v in meta.values()), f"{name}: {meta}"
            assert int(meta["lagThreshold"]) > 0, name
            # KEDA reads the lag from the same brokers the consumers use.
            assert meta["bootstrapServers"] == config["CONVMEM_KAFKA_BOOTSTRAP"], name
            assert meta["topic"] in partitions, f"{name}: no topic {meta['topic']}"
            topics.append(meta["topic"])
        # A consumer beyond the partition count has nothing to read.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= min(partitions[t] for t in topics), name


def test_each_consumer_group_is_scaled_with_the_one_deployment_that_consumes_it(rendered: list[Resource]) -> None:
    prefix = _config(rendered)["CONVMEM_GROUP_PREFIX"]
    triggers = {so["spec"]["scaleTargetRef"]["name"]: {(t["metadata"]["consumerGroup"], t["metadata"]["topic"])
                                                         for t in so["spec"]["triggers"]}
                for so in _of(rendered, "ScaledObject")}
    consumed_by: dict[tuple[str, str], str] = {}
    for deployment in _of(rendered, "Deployment"):
        name = deployment["metadata"]["name"]
        role, groups = _role_and_groups(deployment)
        if groups is not None:
            check_groups([role], prefix, groups)  # what `convmem run` checks at start
        consumed = {(g, t) for g, t in consumer_groups([role], prefix)
                    if groups is None or g.removeprefix(f"{prefix}.") in groups}
        for pair in consumed:
            assert pair not in consumed_by, f"{pair[0]} consumed by {consumed_by.get(pair)} and {name}"
            consumed_by[pair] = name
        # Scaled on exactly the groups it consumes; the ingest edge consumes none and is not.
        assert triggers.get(name, set()) == consumed, name
    assert set(consumed_by) == set(consumer_groups(ROLES, prefix))


def _pod_env(resources: list[Resource], deployment: Resource) -> dict[str, str]:
    container = _container(deployment)
    refs = [source.get("configMapRef", source.get("secretRef")) for source in container["envFrom"]]
    assert {"name": "convmem-config"} in refs and {"name": "convmem-secrets"} in refs  # required, not optional
    env = {**_config(resources), **SECRET_KEYS}
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


async def test_probes_and_scraping_use_the_ports_and_paths_the_processes_serve(
        rendered: list[Resource], monkeypatch: pytest.MonkeyPatch) -> None:
    for deployment in _of(rendered, "Deployment"):
        name = deployment["metadata"]["name"]
        role, _ = _role_and_groups(deployment)
        env = _pod_env(rendered, deployment)
        for variable in [v for v in os.environ if v.startswith("CONVMEM_")]:
            monkeypatch.delenv(variable)
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        settings = load(SETTINGS[role], _env_file=None)  # the pod's settings load: no ConfigError
        container = _container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        if role == "ingest":
            assert isinstance(settings, IngestSettings)
            assert settings.http_host == "0.0.0.0", "the kubelet and the Service must reach it"  # noqa: S104
            expected = settings.http_port
        else:
            expected = settings.ops_port
            assert expected == OPS_PORT_DEFAULT, "the fixed interface"
            assert settings.ops_host == "0.0.0.0", "the kubelet's probes and Prometheus must reach it"  # noqa: S104
        probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")}
        assert {kind: p["path"] for kind, p in probes.items()} == {
            "startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"}, name
        assert {ports[p["port"]] for p in probes.values()} == {expected}, name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (str(expected), "/metrics")
        if role == "ingest":
            assert isinstance(settings, IngestSettings)
            await _ingest_serves(settings, probes["liveness"]["path"], probes["readiness"]["path"])


async def _ingest_serves(settings: IngestSettings, live: str, ready: str) -> None:
    def unavailable() -> EdgePorts:
        raise ConnectionError("no Kafka or Postgres in this test")

    app = create_app(settings, unavailable)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pod") as client:
        assert (await client.get(live)).status_code == 200
        assert (await client.get(ready)).status_code == 503  # served, and honest: nothing is reachable


def test_pods_run_hardened_with_bounded_resources_and_disruption_budgets(rendered: list[Resource]) -> None:
    budgets = [b["spec"]["selector"]["matchLabels"] for b in _of(rendered, "PodDisruptionBudget")]
    for deployment in _of(rendered, "Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == IMAGE_USER, f"{name}: the Dockerfile's USER"
        assert pod["automountServiceAccountToken"] is False, name
        hardening = container["securityContext"]
        assert (hardening["readOnlyRootFilesystem"], hardening["allowPrivilegeEscalation"]) == (True, False), name
        assert hardening["capabilities"]["drop"] == ["ALL"], name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budgets.count(deployment["spec"]["selector"]["matchLabels"]) == 1, f"{name}: one PDB"
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        image = container["image"]
        assert image.split("/")[-1].split(":")[0].split("@")[0] == "convmem", "one image for every role"
    services = {s["metadata"]["name"]: s for s in _of(rendered, "Service")}
    assert services["convmem-ingest"]["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("folder", FOLDERS[1:], ids=[str(f.relative_to(K8S)) for f in FOLDERS[1:]])
def test_overlays_run_one_pinned_image(folder: Path) -> None:
    [image] = {_container(d)["image"] for d in _of(build(folder), "Deployment")}
    assert ":" in image.rsplit("/", 1)[-1] or "@" in image, image
    assert not image.endswith(":latest"), image


def _settings_of(cls: type[CommonSettings]) -> dict[str, bool]:
    """Each setting's variable, and whether it holds a secret."""
    return {f"CONVMEM_{name.upper()}": SecretStr in (field.annotation, *typing.get_args(field.annotation))
            for name, field in cls.model_fields.items()}


def test_the_config_map_holds_known_settings_and_no_secret(rendered: list[Resource]) -> None:
    known: dict[str, bool] = {}
    for cls in SETTINGS.values():
        known.update(_settings_of(cls))
    for variable in _config(rendered):
        assert variable in known, f"{variable} is no setting (a typo is silently ignored)"
        assert not known[variable], f"{variable} is a secret: it belongs in the Secret"
    for variable in SECRET_KEYS:
        assert known[variable], f"{variable} is not a secret setting"
    readme = (ROOT / "deploy" / "README.md").read_text()
    kustomization = (K8S / "base" / "kustomization.yaml").read_text()
    for variable in SECRET_KEYS:
        assert variable in readme and variable in kustomization, f"document the Secret key {variable}"
