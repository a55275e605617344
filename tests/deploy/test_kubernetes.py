"""deploy/k8s: rendered by kustomize (kubectl's own), valid against Kubernetes' schemas (strict:
unknown fields fail), and the deployment the issue asks for."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from fleet_shared.media import MediaSettings

from .conftest import K8S, SERVICES, run, tool

# The oldest Kubernetes still commonly supported and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
STATELESS = {"gateway", "webhook-ingest", "persister"}
MEDIA_SERVICES = ("gateway", "session-orchestrator")
S3_SETTINGS = {name.upper() for name in MediaSettings.model_fields if name.startswith("s3_")}
S3_SECRETS = {"S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}


def render(directory: Path) -> list[dict]:
    out = run([tool("kubectl"), "kustomize", str(directory)]).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def production_dir(tmp_path_factory) -> Path:
    """The production overlay as an operator has it: secrets.env made from the example."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    overlay = copy / "overlays" / "production"
    shutil.copy(overlay / "secrets.env.example", overlay / "secrets.env")
    return overlay


@pytest.fixture(scope="module")
def production(production_dir) -> list[dict]:
    return render(production_dir)


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def write_docs(path: Path, docs: list[dict]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rendered_manifests_match_the_kubernetes_schemas(production, tmp_path, version):
    rendered = write_docs(tmp_path / "production.yaml", production)
    result = run([tool("kubernetes-validate"), "--strict", "--kubernetes-version", version, str(rendered)])
    assert "failed" not in result.stdout + result.stderr


def test_the_base_renders_and_validates_on_its_own(tmp_path):
    docs = render(K8S / "base")
    rendered = write_docs(tmp_path / "base.yaml", docs)
    run([tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES_VERSIONS[-1], str(rendered)])


def test_the_schema_check_catches_a_mistake(production, tmp_path):
    [deployment] = [d for d in production if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    rendered = write_docs(tmp_path / "broken.yaml", [broken])
    result = run(
        [tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES_VERSIONS[-1], str(rendered)],
        ok=False,
    )
    assert result.returncode != 0 and "replica" in result.stdout + result.stderr


def container(deployment: dict) -> dict:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


def test_each_service_is_a_deployment_with_health_and_readiness_probes(production):
    deployments = of_kind(production, "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, (module, _, _) in SERVICES.items():
        c = container(deployments[name])
        assert c["command"] == ["python", "-m", module]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz", name
        [port] = c["ports"]
        assert c["livenessProbe"]["httpGet"]["port"] in (port["name"], port["containerPort"])
        env = {e["name"]: e for e in c["env"]}
        assert env["PORT"]["value"] == str(port["containerPort"])
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_the_stateless_services_scale_with_an_hpa_and_the_orchestrator_by_design(production):
    hpas = of_kind(production, "HorizontalPodAutoscaler")
    assert set(hpas) == STATELESS
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    orchestrator = of_kind(production, "Deployment")["session-orchestrator"]
    # Every partition has an active consumer and a standby replica, RabbitMQ failing it over.
    assert orchestrator["spec"]["replicas"] >= 2
    assert orchestrator["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdbs = of_kind(production, "PodDisruptionBudget")
    assert set(pdbs) == set(SERVICES)


def test_settings_come_from_a_configmap_and_secrets_from_a_secret(production):
    [configmap] = of_kind(production, "ConfigMap").values()
    [secret] = of_kind(production, "Secret").values()
    secret_keys = set(secret["data"])
    for name, (_, _, _) in SERVICES.items():
        c = container(of_kind(production, "Deployment")[name])
        assert c["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
        assert refs["RABBITMQ_URL"]["key"] == f"RABBITMQ_URL_{name.upper().replace('-', '_')}"
        for ref in refs.values():
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys
    assert not {
        k
        for k in configmap["data"]
        if re.search(r"SECRET|KEY|PASSWORD|_URL$", k) and k not in ("WAHA_URL", "WEBHOOK_URL")
    }


def test_secrets_go_only_where_they_are_needed(production):
    deployments = of_kind(production, "Deployment")
    keys = {
        name: {e["valueFrom"]["secretKeyRef"]["key"] for e in container(d)["env"] if "valueFrom" in e}
        for name, d in deployments.items()
    }
    assert keys == {
        "gateway": {"RABBITMQ_URL_GATEWAY", "JWT_SECRET", *S3_SECRETS},
        "session-orchestrator": {
            "RABBITMQ_URL_SESSION_ORCHESTRATOR",
            "MONGODB_URL",
            "WAHA_API_KEY",
            "WEBHOOK_HMAC_KEY",
            *S3_SECRETS,
        },
        "webhook-ingest": {"RABBITMQ_URL_WEBHOOK_INGEST", "WEBHOOK_HMAC_KEY"},
        "persister": {"RABBITMQ_URL_PERSISTER", "MONGODB_URL"},
        "webhook-dispatcher": {"RABBITMQ_URL_WEBHOOK_DISPATCHER", "MONGODB_URL"},
    }


def test_the_services_run_unprivileged(production):
    for name, d in of_kind(production, "Deployment").items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        sc = container(d)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container(d)["image"].rsplit(":", 1)[1] not in ("", "latest"), name


def test_waha_keeps_its_sessions_and_the_urls_point_at_the_services(production):
    [configmap] = of_kind(production, "ConfigMap").values()
    services = of_kind(production, "Service")
    waha = of_kind(production, "StatefulSet")["waha"]
    assert re.fullmatch(r"devlikeapro/waha:(noweb-|gows-)?\d{4}\.\d+\.\d+", container(waha)["image"])
    mounts = {m["mountPath"] for m in container(waha)["volumeMounts"]}
    assert "/app/.sessions" in mounts
    assert {t["metadata"]["name"] for t in waha["spec"]["volumeClaimTemplates"]} >= {"sessions"}
    data = configmap["data"]
    assert data["WAHA_URL"] == f"http://waha:{services['waha']['spec']['ports'][0]['port']}"
    assert (
        data["WEBHOOK_URL"]
        == f"http://webhook-ingest:{services['webhook-ingest']['spec']['ports'][0]['port']}/webhooks/waha"
    )
    assert data["ENVIRONMENT"] == "production"


def test_the_configmap_holds_only_settings_the_services_know(production):
    from gateway.config import Settings as GatewaySettings
    from persister.config import Settings as PersisterSettings
    from session_orchestrator.config import Settings as OrchestratorSettings
    from webhook_ingest.config import Settings as IngestSettings

    known = {
        name.upper()
        for s in (GatewaySettings, PersisterSettings, OrchestratorSettings, IngestSettings)
        for name in s.model_fields
    }
    [configmap] = of_kind(production, "ConfigMap").values()
    assert set(configmap["data"]) <= known, set(configmap["data"]) - known


def test_the_gateway_and_the_orchestrator_get_every_s3_setting(production):
    """The media store is an external S3: bucket and region in the ConfigMap, endpoint and keys in
    the Secret (no endpoint: AWS)."""
    [configmap] = of_kind(production, "ConfigMap").values()
    [secret] = of_kind(production, "Secret").values()
    assert configmap["data"]["MEDIA_STORE"] == "s3"
    assert S3_SECRETS <= set(secret["data"])
    for name in MEDIA_SERVICES:
        env = {e["name"]: e for e in container(of_kind(production, "Deployment")[name])["env"]}
        missing = S3_SETTINGS - set(env) - set(configmap["data"])
        assert not missing, f"{name} lacks {sorted(missing)}"
        refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if "valueFrom" in e}
        assert {n: r["key"] for n, r in refs.items() if n in S3_SETTINGS} == {k: k for k in S3_SECRETS}, name
        assert [n for n, r in refs.items() if r.get("optional")] == ["S3_ENDPOINT_URL"], name
