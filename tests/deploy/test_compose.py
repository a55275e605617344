"""compose.yaml: valid against the compose specification's schema and to the Compose CLI itself
(which parses, interpolates and checks it without a container engine), and it is the stack the
issue asks for."""

import importlib
import json
import re
import subprocess
from urllib.parse import urlsplit

import pytest

from fleet_shared.media import MediaSettings

from .conftest import COMPOSE_FILE, DEFINITIONS, DEPLOY, ROOT, SERVICES, deploy_secrets, render_definitions, run, tool

INFRASTRUCTURE = {"rabbitmq", "mongodb", "waha", "minio", "minio-init"}
# The services that read and write media files, and every S3 setting the media store reads.
MEDIA_SERVICES = ("gateway", "session-orchestrator")
S3_SETTINGS = {name.upper() for name in MediaSettings.model_fields if name.startswith("s3_")}
MINIO_INIT = DEPLOY / "minio" / "init.sh"


def compose_config(tmp_path, env: dict[str, str], *args: str, ok: bool = True):
    """`docker-compose config` as the CLI sees the project with this .env; the model as JSON."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    result = run(
        [
            tool("docker-compose"),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            *args,
            "config",
            "--format",
            "json",
        ],
        ok=ok,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    return json.loads(result.stdout) if result.returncode == 0 else result


@pytest.fixture
def secrets_env():
    return deploy_secrets()


@pytest.fixture
def real(tmp_path, secrets_env):
    return compose_config(tmp_path, secrets_env)


def test_matches_the_compose_specification_schema():
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])


def test_the_schema_check_catches_a_mistake(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  web:\n    image: nginx:1.27\n    restrat: always\n")
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)], ok=False)
    assert result.returncode != 0 and "restrat" in result.stdout + result.stderr


def test_docker_compose_up_starts_the_real_system(real):
    assert set(real["services"]) == INFRASTRUCTURE | set(SERVICES)
    assert real["services"]["waha"]["deploy"]["replicas"] == 1
    assert real["services"]["session-orchestrator"]["environment"]["WAHA_URL"] == "http://waha:3000"


def test_images_are_pinned(real):
    for name, service in real["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
    assert re.fullmatch(r"devlikeapro/waha:(noweb-|gows-)?\d{4}\.\d+\.\d+", real["services"]["waha"]["image"])
    assert re.fullmatch(r"rabbitmq:4(\.\d+)*-management", real["services"]["rabbitmq"]["image"])
    assert re.fullmatch(r"mongo:8(\.\d+)*", real["services"]["mongodb"]["image"])
    for name, repo in (("minio", "minio/minio"), ("minio-init", "minio/mc")):
        assert re.fullmatch(rf"{repo}:RELEASE\.\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\dZ", real["services"][name]["image"])


def test_the_four_services_are_one_image_built_from_the_dockerfile(real):
    images = {real["services"][name]["image"] for name in SERVICES}
    assert len(images) == 1
    for name, (module, _, _) in SERVICES.items():
        service = real["services"][name]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert service["command"] == ["python", "-m", module]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


def one_shot(service: dict) -> bool:
    """A container that does its work and exits (never restarted): waited for to complete, not healthy."""
    return service["restart"] == "no"


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(real):
    services = real["services"]
    for name, service in services.items():
        assert one_shot(service) or service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dep, how in service.get("depends_on", {}).items():
            # (A dependency of another profile is not in the model.)
            wanted = "service_completed_successfully" if dep in services and one_shot(services[dep]) else "service_healthy"
            assert how["condition"] == wanted, f"{name} -> {dep}"
    for name in SERVICES:
        assert "rabbitmq" in real["services"][name]["depends_on"]
        assert "/readyz" in " ".join(real["services"][name]["healthcheck"]["test"])
    for name in ("session-orchestrator", "persister", "webhook-dispatcher"):
        assert "mongodb" in real["services"][name]["depends_on"]
    assert "waha" in real["services"]["session-orchestrator"]["depends_on"]


def test_state_lives_in_named_volumes(real):
    for name in ("rabbitmq", "mongodb", "waha", "minio"):
        mounts = real["services"][name]["volumes"]
        assert any(m["type"] == "volume" for m in mounts), name
        # Bind mounts only bring read-only configuration in.
        assert all(m.get("read_only") for m in mounts if m["type"] == "bind"), name
    assert {"rabbitmq-data", "mongodb-data", "waha-sessions", "minio-data"} <= set(real["volumes"])


def test_mongodb_is_a_one_node_replica_set(real):
    mongo = real["services"]["mongodb"]
    assert mongo["command"][:2] == ["--replSet", "rs0"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    for name in ("session-orchestrator", "persister", "webhook-dispatcher"):
        url = real["services"][name]["environment"]["MONGODB_URL"]
        assert "replicaSet=rs0" in url and urlsplit(url).hostname == "mongodb"


def test_rabbitmq_loads_the_definitions_and_enables_the_plugins(real):
    rabbit = real["services"]["rabbitmq"]
    targets = {m["target"]: m for m in rabbit["volumes"]}
    assert targets["/etc/rabbitmq/enabled_plugins"]["source"].endswith("deploy/rabbitmq/enabled_plugins")
    assert targets["/opt/waha-fleet/definitions.json"]["source"].endswith("deploy/rabbitmq/definitions.json")
    assert any(t.startswith("/etc/rabbitmq/conf.d/") for t in targets)
    entrypoint = " ".join(rabbit["entrypoint"])
    assert "render-definitions.sh" in entrypoint and "exec docker-entrypoint.sh rabbitmq-server" in entrypoint
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert re.search(r"^load_definitions\s*=\s*/etc/rabbitmq/definitions.json$", conf, re.M)
    plugins = (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    for plugin in ("rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_consistent_hash_exchange"):
        assert plugin in plugins


def test_each_service_logs_in_as_its_own_rabbitmq_user(real, secrets_env, tmp_path):
    """The URL compose gives a service names that service's user, with the password the broker's
    rendered definitions give that user, on the waha-fleet vhost."""
    rendered = tmp_path / "definitions.json"
    result = render_definitions(secrets_env, rendered)
    assert result.returncode == 0, result.stderr
    passwords = {u["name"]: u["password"] for u in json.loads(rendered.read_text())["users"]}
    for name, (_, user, _) in SERVICES.items():
        url = urlsplit(real["services"][name]["environment"]["RABBITMQ_URL"])
        assert (url.hostname, url.port, url.path) == ("rabbitmq", 5672, "/waha-fleet"), name
        assert url.username == user and url.password == passwords[user], name
    assert "guest" not in {u["name"] for u in json.loads(DEFINITIONS.read_text())["users"]}


def test_secrets_go_only_where_they_are_needed(real, secrets_env):
    needs = {
        "JWT_SECRET": {"gateway"},
        "WAHA_API_KEY": {"session-orchestrator", "waha"},
        "WEBHOOK_HMAC_KEY": {"session-orchestrator", "webhook-ingest"},
        "MINIO_ROOT_PASSWORD": {"minio", "minio-init"},
        "S3_SECRET_ACCESS_KEY": {*MEDIA_SERVICES, "minio-init"},
    }
    for secret, who in needs.items():
        have = {n for n, s in real["services"].items() if s.get("environment", {}).get(secret) == secrets_env[secret]}
        assert have == who, secret
    mongo_users = {n for n, s in real["services"].items() if "MONGODB_URL" in s.get("environment", {})}
    assert mongo_users == {"session-orchestrator", "persister", "webhook-dispatcher"}
    for name in SERVICES:
        assert real["services"][name]["environment"]["ENVIRONMENT"] == "production"


def test_waha_calls_ingest_with_hmac_and_is_reached_with_its_api_key(real, secrets_env):
    orchestrator = real["services"]["session-orchestrator"]["environment"]
    hook = urlsplit(orchestrator["WEBHOOK_URL"])
    assert (hook.hostname, hook.port, hook.path) == ("webhook-ingest", 8081, "/webhooks/waha")
    assert real["services"]["webhook-ingest"]["environment"]["PORT"] == "8081"
    assert orchestrator["WEBHOOK_HMAC_KEY"] == real["services"]["webhook-ingest"]["environment"]["WEBHOOK_HMAC_KEY"]
    waha = real["services"]["waha"]
    assert waha["environment"]["WAHA_API_KEY"] == secrets_env["WAHA_API_KEY"] == orchestrator["WAHA_API_KEY"]
    assert any(m["target"] == "/app/.sessions" and m["type"] == "volume" for m in waha["volumes"])
    assert "ports" not in waha, "WAHA is reached only from inside the stack"


def test_a_missing_secret_stops_compose_with_a_clear_message(tmp_path, secrets_env):
    del secrets_env["JWT_SECRET"]
    result = compose_config(tmp_path, secrets_env, ok=False)
    assert result.returncode != 0 and "set JWT_SECRET in .env" in result.stderr


def test_the_emulator_profile_runs_the_emulator_instead_of_waha(tmp_path, secrets_env):
    env = {**secrets_env, "COMPOSE_PROFILES": "emulator", "WAHA_URL": "http://waha-emulator:3000", "WAHA_REPLICAS": "0"}
    model = compose_config(tmp_path, env)
    emulator = model["services"]["waha-emulator"]
    assert emulator["command"][:3] == ["python", "-m", "waha_emulator"]
    assert emulator["image"] == model["services"]["gateway"]["image"]
    assert emulator["environment"]["WAHA_API_KEY"] == secrets_env["WAHA_API_KEY"]
    assert model["services"]["waha"]["deploy"]["replicas"] == 0
    orchestrator = model["services"]["session-orchestrator"]
    assert orchestrator["environment"]["WAHA_URL"] == "http://waha-emulator:3000"
    dependency = orchestrator["depends_on"]["waha-emulator"]
    assert dependency["condition"] == "service_healthy" and dependency["required"] is False


def test_env_example_names_every_secret_compose_needs(secrets_env):
    example = (ROOT / ".env.example").read_text()
    compose = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose))
    assert required == set(secrets_env)
    for name in required:
        assert re.search(rf"^{name}=$", example, re.M), name


def settings_fields(service: str) -> set[str]:
    """The environment variables a service reads: its Settings' fields, upper-cased."""
    settings = importlib.import_module(f"{SERVICES[service][0]}.config").Settings
    return {name.upper() for name in settings.model_fields}


def test_each_service_is_given_only_settings_it_reads(real):
    for name in SERVICES:
        unknown = set(real["services"][name]["environment"]) - settings_fields(name)
        assert not unknown, f"{name} does not read {sorted(unknown)}"


def test_the_gateway_and_the_orchestrator_store_media_in_minio_as_its_init_prepared_it(real):
    services = real["services"]
    init = services["minio-init"]["environment"]
    minio = urlsplit(init["MINIO_URL"])
    assert minio.hostname == "minio" and services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    media = [services[name]["environment"] for name in MEDIA_SERVICES]
    for name, env in zip(MEDIA_SERVICES, media, strict=True):
        assert S3_SETTINGS <= settings_fields(name), name
        assert env["MEDIA_STORE"] == "s3", name
        missing = {s for s in S3_SETTINGS if not env.get(s)}
        assert not missing, f"{name} lacks {sorted(missing)}"
        endpoint = urlsplit(env["S3_ENDPOINT_URL"])
        assert (endpoint.hostname, endpoint.port) == (minio.hostname, minio.port), name
        # The bucket and the user the init made, and with the secret it gave that user.
        for setting in ("S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
            assert env[setting] == init[setting], f"{name}: {setting}"
        assert env["S3_ACCESS_KEY_ID"] != services["minio"]["environment"]["MINIO_ROOT_USER"], "not as MinIO's root"
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert {k: v for k, v in media[0].items() if k in S3_SETTINGS} == {k: v for k, v in media[1].items() if k in S3_SETTINGS}
    assert init["MINIO_ROOT_USER"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert init["MINIO_ROOT_PASSWORD"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    [script] = services["minio-init"]["volumes"]
    assert script["source"].endswith("deploy/minio/init.sh") and script["read_only"] is True
    assert services["minio-init"]["entrypoint"] == ["/bin/sh", script["target"]]


def test_another_s3_store_is_set_in_env(tmp_path, secrets_env):
    store = {"S3_ENDPOINT_URL": "https://s3.eu-central-1.amazonaws.com", "S3_REGION": "eu-central-1",
             "S3_BUCKET": "acme-whatsapp-media", "S3_ACCESS_KEY_ID": "AKIAEXAMPLE"}
    model = compose_config(tmp_path, {**secrets_env, **store})
    for name in MEDIA_SERVICES:
        env = model["services"][name]["environment"]
        assert {k: env[k] for k in store} == store, name


def run_init(tmp_path, env: dict[str, str], fail_on: str = "") -> tuple[subprocess.CompletedProcess, list[str]]:
    """deploy/minio/init.sh with a stand-in `mc` that logs its calls (and keeps the policy it is
    given), failing the call that starts with `fail_on`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "mc.log"
    (bin_dir / "mc").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        f'case "$*" in "{fail_on}"*) [ -n "{fail_on}" ] && exit 1;; esac\n'
        f'[ "$1 $2 $3" = "admin policy create" ] && cp "$6" {tmp_path}/policy.json\n'
        "exit 0\n"
    )
    (bin_dir / "mc").chmod(0o755)
    result = subprocess.run(["sh", str(MINIO_INIT)], env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
                            capture_output=True, text=True, timeout=30)
    return result, log.read_text().splitlines() if log.exists() else []


def test_minio_init_makes_the_bucket_and_a_user_allowed_only_that_bucket(real, tmp_path):
    env = real["services"]["minio-init"]["environment"]
    result, calls = run_init(tmp_path, env)
    assert result.returncode == 0, result.stderr
    bucket, user = env["S3_BUCKET"], env["S3_ACCESS_KEY_ID"]
    assert calls == [
        f"alias set fleet {env['MINIO_URL']} {env['MINIO_ROOT_USER']} {env['MINIO_ROOT_PASSWORD']}",
        f"mb --ignore-existing fleet/{bucket}",
        f"admin policy create fleet waha-fleet-media {calls[2].split()[-1]}",
        f"admin user add fleet {user} {env['S3_SECRET_ACCESS_KEY']}",
        f"admin policy attach fleet waha-fleet-media --user {user}",
    ]
    policy = json.loads((tmp_path / "policy.json").read_text())
    allowed = {(a, r) for st in policy["Statement"] if st["Effect"] == "Allow" for a in st["Action"] for r in st["Resource"]}
    # What S3MediaStore does (head, put, get, delete), and listing so a missing key is a 404, not a 403.
    assert allowed == {("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
                       *((f"s3:{a}Object", f"arn:aws:s3:::{bucket}/*") for a in ("Get", "Put", "Delete"))}


def test_minio_init_stops_at_the_first_failure_and_on_a_missing_setting(real, tmp_path):
    env = real["services"]["minio-init"]["environment"]
    result, calls = run_init(tmp_path, env, fail_on="mb")
    assert result.returncode != 0 and [c.split()[0] for c in calls] == ["alias", "mb"]
    (tmp_path / "mc.log").unlink()
    result, calls = run_init(tmp_path, {k: v for k, v in env.items() if k != "S3_SECRET_ACCESS_KEY"})
    assert result.returncode != 0 and "S3_SECRET_ACCESS_KEY" in result.stderr and calls == []
