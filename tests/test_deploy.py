"""The deployment files, checked as far as this machine allows (issue 17, "Deploy").

There is no Docker engine and no Kubernetes here, so the image is not built and nothing is
deployed. What is checked instead:

- the Dockerfile, parsed: multi-stage, slim final stage, non-root user, translations and static
  files built in, Chinese fonts and the PostgreSQL client, the entry point being infra/entrypoint.py;
- infra/compose.yaml, parsed: its services, that each Caravan service's command is an entry-point
  subcommand, PgBouncer for web and worker and PostgreSQL directly for the migration, health checks;
- the Helm chart, rendered by Helm's own template engine (the Go library shipped in the PyPI
  package helm-python-sdk) and linted: probes, the migration hook, the single Recreate scheduler,
  the autoscalers, the Ingress hosts, secrets only by reference;
- every environment variable those files name is one Caravan (or the entry point) reads, and every
  variable the settings require is given to every Caravan process;
- the entry points themselves, run from the checkout exactly as the image runs them: ``migrate``
  against the test database, ``web`` answering /healthz and /readyz (also through a PgBouncer
  configured by infra/pgbouncer/entrypoint.sh), ``worker`` and ``scheduler`` starting and stopping
  on SIGTERM.
"""
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import helm_python as helm
import pytest
import yaml
from django.db import connection

from infra import entrypoint
from tests.servers import database_url, free_port, http_status, log_tail

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
CHART = INFRA / "helm" / "caravan"
CARAVAN_SERVICES = ("migrate", "web", "worker", "scheduler")

# Read by the compose file only (interpolation), never by Caravan.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "CARAVAN_HTTP_PORT", "CARAVAN_IMAGE", "CARAVAN_PGBOUNCER_IMAGE",
                "PGBOUNCER_MAX_CLIENT_CONN", "PGBOUNCER_POOL_SIZE"}
# Read by libraries or the interpreter, not through caravan.env.
LIBRARY = {"EXECUTOR", "DJANGO_SETTINGS_MODULE", "PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
           "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}


# --- what Caravan reads -------------------------------------------------------------------------

def setting_variables() -> tuple[set[str], set[str]]:
    """(every variable read through caravan.env's readers in platform/caravan, the secret ones)."""
    names, secrets = set(), set()
    for path in (ROOT / "platform" / "caravan").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("env_")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.add(node.args[0].value)
                if node.func.id == "env_secret":
                    secrets.add(node.args[0].value)
    return names, secrets


SETTINGS, SECRETS = setting_variables()
KNOWN = SETTINGS | {f"{name}_FILE" for name in SECRETS} | set(entrypoint.DEFAULTS) | LIBRARY
REQUIRED = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DOCUMENT_KEYS", "DOCUMENT_HASH_KEY"}


def test_the_settings_read_the_variables_this_file_relies_on():
    assert {"SECRET_KEY", "DATABASE_URL", "DATABASE_POOLING", "PLATFORM_DOMAIN", "LOG_LEVEL"} <= SETTINGS
    assert {"SECRET_KEY", "DOCUMENT_KEYS", "EMAIL_HOST_PASSWORD"} <= SECRETS


def test_required_variables_are_exactly_those_the_settings_refuse_to_start_without():
    """Each of REQUIRED missing stops the settings; all of them (and nothing else) let them load.
    A new required setting fails here until compose, env.example and the chart give it."""
    script = """
import importlib, json, os, sys
base = {k: v for k, v in os.environ.items()}
outcome = {}
for missing in [None] + json.loads(sys.argv[1]):
    os.environ.clear()
    os.environ.update({k: v for k, v in base.items() if k != missing})
    sys.modules.pop("caravan.settings", None)
    try:
        importlib.import_module("caravan.settings")
        outcome[str(missing)] = "ok"
    except Exception as e:
        outcome[str(missing)] = type(e).__name__
print(json.dumps(outcome))
"""
    from cryptography.fernet import Fernet

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
           "SECRET_KEY": "x", "DATABASE_URL": "postgres://u@h/d", "REDIS_URL": "redis://h:6379/0",
           "DOCUMENT_KEYS": Fernet.generate_key().decode(), "DOCUMENT_HASH_KEY": "x"}
    assert set(env) - {"PATH", "PYTHONPATH"} == REQUIRED
    result = subprocess.run([sys.executable, "-c", script, json.dumps(sorted(REQUIRED))], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome.pop("None") == "ok", "the settings need more than " + ", ".join(sorted(REQUIRED))
    assert outcome == {name: "ImproperlyConfigured" for name in REQUIRED}


# --- the entry point ------------------------------------------------------------------------------

def test_entrypoint_commands():
    env = {"PORT": "9000", "BIND": "127.0.0.1", "WEB_WORKERS": "5", "WORKER_CONCURRENCY": "7"}
    web = entrypoint.command("web", env, "py")
    assert web[:4] == ["py", "-m", "gunicorn", "caravan.wsgi"] and "127.0.0.1:9000" in web
    assert web[web.index("--workers") + 1] == "5"
    # gunicorn's access log (paths with their query: numbers, names searched) only when asked for
    assert "--access-logfile" not in web
    assert "--access-logfile" in entrypoint.command("web", {**env, "WEB_ACCESS_LOG": "1"}, "py")
    worker = entrypoint.command("worker", env, "py")
    assert worker[:6] == ["py", "-m", "celery", "-A", "caravan", "worker"] and worker[-1] == "7"
    assert entrypoint.command("scheduler", {}, "py")[:6] == ["py", "-m", "celery", "-A", "caravan", "beat"]
    assert entrypoint.command("migrate", {}, "py") == ["py", str(ROOT / "manage.py"), "migrate_platform"]
    with pytest.raises(ValueError):
        entrypoint.command("shell", {})
    unknown = subprocess.run([sys.executable, "-m", "infra.entrypoint", "nonsense"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    assert unknown.returncode == 2 and "infra.entrypoint web" in unknown.stderr


def test_make_run_starts_the_entrypoint():
    """One definition: devenv (make run) starts web, worker, scheduler and migrate through
    infra/entrypoint.py, as the image does; no command of its own."""
    source = (INFRA / "devenv.py").read_text()
    assert '[PYTHON, "-m", "infra.entrypoint", "migrate"' in source
    assert re.search(r'for name in \("web", "worker", "scheduler"\):\s+manager\.add_process\(name, '
                     r'shlex\.join\(\[PYTHON, "-m", "infra\.entrypoint", name\]\)', source)
    assert "gunicorn" not in source and "celery -A" not in source and '"migrate_platform"' not in source


def test_web_and_worker_get_an_empty_metrics_directory_each_start(tmp_path, monkeypatch):
    monkeypatch.setattr(entrypoint.tempfile, "gettempdir", lambda: str(tmp_path))
    gone = tmp_path / "caravan-prometheus-web-999999999"  # no such process
    gone.mkdir()
    (gone / "counter_1.db").write_bytes(b"x")
    alive = tmp_path / f"caravan-prometheus-worker-{os.getppid()}"
    alive.mkdir()
    mine = tmp_path / f"caravan-prometheus-web-{os.getpid()}"
    mine.mkdir()
    (mine / "counter_2.db").write_bytes(b"old")  # a reused pid's leftovers
    env = {}
    entrypoint.metrics_directory("web", env)
    assert env == {"PROMETHEUS_MULTIPROC_DIR": str(mine)}
    assert mine.is_dir() and not any(mine.iterdir())
    assert not gone.exists() and alive.exists()
    given = {"PROMETHEUS_MULTIPROC_DIR": "/somewhere"}
    entrypoint.metrics_directory("worker", given)
    assert given == {"PROMETHEUS_MULTIPROC_DIR": "/somewhere"}
    beat = {}
    entrypoint.metrics_directory("scheduler", beat)
    assert beat == {}


# --- Dockerfile -----------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of infra/docker/Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (INFRA / "docker" / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.endswith("\\") else raw.strip()
        if not raw.endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def stages() -> list[list[tuple[str, str]]]:
    result = []
    for instruction in dockerfile():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_dockerfile_is_multi_stage_with_a_slim_non_root_final_stage():
    args = dict(a.split("=", 1) for i, a in dockerfile() if i == "ARG" and "=" in a)
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    base = final[0][1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base.startswith("python:3.11-slim")
    users = [a for i, a in final if i == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    assert users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(a for i, a in build if i == "RUN")
    assert "compilemessages" in runs and "collectstatic" in runs
    assert any(i == "COPY" and "--from=build" in a and "/app" in a for i, a in final), "built files not copied"
    final_runs = " ".join(a for i, a in final if i == "RUN")
    assert re.search(r"apt-get install [^&]*fonts-noto-cjk", final_runs)
    assert re.search(r"apt-get install [^&]*postgresql-client", final_runs)
    assert not re.search(r"apt-get install [^&]*(gettext|build-essential|gcc)", final_runs), "build tools in the final image"


def test_dockerfile_entrypoint_is_infra_entrypoint():
    final = stages()[-1]
    entry = json.loads([a for i, a in final if i == "ENTRYPOINT"][-1])
    cmd = json.loads([a for i, a in final if i == "CMD"][-1])
    assert entry == ["python", "-m", "infra.entrypoint"]
    assert cmd[0] in entrypoint.SUBCOMMANDS
    workdir = [a for i, a in final if i == "WORKDIR"][-1]
    assert workdir == "/app", "python -m infra.entrypoint needs the checkout as working directory"


def test_dockerfile_environment_names_real_variables():
    names = set()
    for instruction, rest in dockerfile():
        if instruction == "ENV":
            names |= set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", rest))
    assert names and names <= KNOWN, names - KNOWN
    # Writable places are on the /data volume, not in the read-only code.
    for name in ("MEDIA_ROOT", "FEED_SPOOL_DIR", "EXPORT_ROOT"):
        if name in SETTINGS:
            assert re.search(rf"{name}=/data/", (INFRA / "docker" / "Dockerfile").read_text()), name


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "var", ".env", "infra/.env"} <= ignored


# --- compose --------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (INFRA / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def test_compose_services_and_their_commands():
    services = compose()["services"]
    assert set(services) == {"web", "worker", "scheduler", "migrate", "postgres", "redis", "pgbouncer"}
    for name in CARAVAN_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "infra/docker/Dockerfile"
        assert (INFRA / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        assert service["command"] == [name], "each Caravan service passes only its subcommand"
        assert name in entrypoint.SUBCOMMANDS
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "replicas" not in services["scheduler"].get("deploy", {})
    assert (INFRA / services["pgbouncer"]["build"] / "Dockerfile").exists()


def test_compose_web_and_worker_go_through_pgbouncer_and_migrations_do_not():
    services = compose()["services"]
    for name in ("web", "worker", "scheduler"):
        env = services[name]["environment"]
        assert "@pgbouncer:6432/" in env["DATABASE_URL"] and env["DATABASE_POOLING"] == "transaction"
    migrate = services["migrate"]["environment"]
    assert "@postgres:5432/" in migrate["DATABASE_URL"] and migrate["DATABASE_POOLING"] == "session"
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    script = (INFRA / "pgbouncer" / "entrypoint.sh").read_text()
    assert "pool_mode = ${POOL_MODE:-transaction}" in script
    for variable in services["pgbouncer"]["environment"]:
        assert "${" + variable in script or "$" + variable in script, f"pgbouncer's entrypoint ignores {variable}"


def test_compose_health_checks_use_healthz_and_readyz():
    services = compose()["services"]
    test = services["web"]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "infra.entrypoint"] and test[4] == "probe"
    assert test[5:] == ["/healthz", "/readyz"]
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "pgbouncer"):
        assert services[name]["healthcheck"]["test"]


def test_compose_and_env_example_name_only_real_variables():
    text = (INFRA / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = env_example()
    assert interpolated <= set(example), f"compose reads variables env.example does not document: {interpolated - set(example)}"
    assert COMPOSE_ONLY <= interpolated, "COMPOSE_ONLY lists a variable compose does not read"
    assert set(example) <= KNOWN | COMPOSE_ONLY, set(example) - KNOWN - COMPOSE_ONLY
    services = compose()["services"]
    for name in CARAVAN_SERVICES:
        env = set(services[name]["environment"])
        assert env <= KNOWN, env - KNOWN
        assert REQUIRED <= env | set(example), f"{name} lacks {REQUIRED - env - set(example)}"


def test_env_example_holds_no_secret_and_every_variable_is_documented():
    example = env_example()
    for name in SECRETS & set(example) | {"POSTGRES_PASSWORD"}:
        assert example[name] in ("", "change-me"), f"{name} has a value in env.example"
    documented = (ROOT / "docs" / "configuration.md").read_text()
    for name in (set(example) | set(entrypoint.DEFAULTS)) - COMPOSE_ONLY - LIBRARY:
        assert f"`{name}`" in documented, f"{name} is not in docs/configuration.md"
    text = (INFRA / "env.example").read_text()
    for name in example:  # every line is explained by a comment in its section or just above it
        above = text.split(f"\n{name}=")[0].rsplit("\n\n", 1)[-1]
        assert "#" in above, f"{name} has no comment in env.example"


def test_backup_configuration_and_scripts_parse():
    import configparser

    conf = configparser.ConfigParser(strict=True)
    conf.read_string((INFRA / "pgbackrest" / "pgbackrest.conf").read_text())
    assert set(conf.sections()) == {"global", "caravan"}
    assert conf["global"]["repo1-retention-full"] == "2" and conf["global"]["repo1-cipher-type"] == "aes-256-cbc"
    assert not any(key.endswith(("cipher-pass", "s3-key", "s3-key-secret")) for key in conf["global"]), "a secret in git"
    assert conf["caravan"]["pg1-path"]
    for shell, script in (("sh", INFRA / "pgbouncer" / "entrypoint.sh"), ("bash", INFRA / "pgbackrest" / "drill.sh")):
        result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


# --- Helm -----------------------------------------------------------------------------------------

def render(values: dict | None = None, *, upgrade: bool = False) -> list[dict]:
    merged = {"secrets": {"existingSecret": "caravan-secrets"}}
    for key, value in (values or {}).items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(merged, name="prod", namespace="travel", is_install=not upgrade, is_upgrade=upgrade)
    return [doc for path, text in sorted(manifests.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict]) -> dict[str, dict]:
    """Every Caravan container of the release, by the subcommand it runs."""
    result = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c.get("args"):
                    result[c["args"][0]] = c
    return result


def test_helm_chart_lints_clean():
    report = helm.lint(str(CHART), values={"secrets": {"existingSecret": "caravan-secrets"}}, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_values_schema_refuses_bad_values():
    for bad in ({"database": {"pooling": "statement"}}, {"platformScheme": "ftp"},
                {"web": {"autoscaling": {"targetCPUUtilizationPercentage": 170}}}, {"platformDomain": "Caravan Example"}):
        with pytest.raises(helm.HelmError):
            render(bad)


def test_helm_renders_each_process_with_an_entrypoint_subcommand():
    docs = render()
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"prod-caravan-web", "prod-caravan-worker", "prod-caravan-scheduler"}
    found = containers(docs)
    assert set(found) == {"web", "worker", "scheduler", "migrate"} <= set(entrypoint.SUBCOMMANDS)
    for name, container in found.items():
        assert container["image"] == "caravan:0.1.0"
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    for doc in deployments.values():
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0


def test_helm_web_probes_and_service():
    docs = render()
    web = containers(docs)["web"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert env["PORT"] == "8000"
    service = by_kind(docs, "Service")["prod-caravan-web"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == by_kind(docs, "Deployment")["prod-caravan-web"]["spec"]["selector"]["matchLabels"]


def test_helm_worker_serves_its_metrics_on_a_named_port():
    worker = containers(render({"worker": {"metricsPort": 9200}}))["worker"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["WORKER_METRICS_PORT"] == "9200" and "WORKER_METRICS_PORT" in SETTINGS
    assert worker["ports"] == [{"name": "metrics", "containerPort": 9200}]


def test_helm_scheduler_is_one_replica_recreated():
    for values in ({}, {"scheduler": {"replicas": 3}}, {"worker": {"autoscaling": {"enabled": False}}}):
        scheduler = by_kind(render(values), "Deployment")["prod-caravan-scheduler"]
        assert scheduler["spec"]["replicas"] == 1
        assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    assert "prod-caravan-scheduler" not in by_kind(render(), "HorizontalPodAutoscaler")


def test_helm_migrations_are_a_pre_install_pre_upgrade_job_straight_to_postgresql():
    for upgrade in (False, True):
        job = by_kind(render(upgrade=upgrade), "Job")["prod-caravan-migrate"]
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        migrate = spec["containers"][0]
        assert migrate["args"] == ["migrate"]
        env = {e["name"]: e for e in migrate["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "MIGRATION_DATABASE_URL"
        assert env["DATABASE_POOLING"]["value"] == "session"
        assert "envFrom" not in migrate, "a pre-install hook runs before the release's ConfigMap exists"
        assert env["PLATFORM_DOMAIN"]["value"] == "caravan.example.com"
    direct = by_kind(render({"migrations": {"databaseUrlKey": "DATABASE_URL"}, "database": {"pooling": "session"}}), "Job")
    env = {e["name"]: e for e in direct["prod-caravan-migrate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"


def test_helm_autoscalers_target_web_and_worker():
    docs = render()
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {"prod-caravan-web", "prod-caravan-worker"}
    deployments = by_kind(docs, "Deployment")
    for hpa in hpas.values():
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert "replicas" not in target["spec"], "a fixed replica count fights the autoscaler"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    fixed = render({"web": {"autoscaling": {"enabled": False}}})
    assert by_kind(fixed, "Deployment")["prod-caravan-web"]["spec"]["replicas"] == 2
    assert set(by_kind(fixed, "HorizontalPodAutoscaler")) == {"prod-caravan-worker"}


def test_helm_ingress_serves_the_platform_domain_and_every_agency_subdomain():
    docs = render({"platformDomain": "crm.example.org"})
    ingress = by_kind(docs, "Ingress")["prod-caravan"]
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts == ["crm.example.org", "*.crm.example.org"]
    assert ingress["spec"]["tls"][0]["hosts"] == hosts
    for rule in ingress["spec"]["rules"]:
        assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "prod-caravan-web"
    config = by_kind(docs, "ConfigMap")["prod-caravan"]["data"]
    assert config["PLATFORM_DOMAIN"] == "crm.example.org"
    assert config["CSRF_TRUSTED_ORIGINS"] == "https://*.crm.example.org,https://crm.example.org"
    for probe in ("livenessProbe", "readinessProbe"):
        headers = containers(docs)["web"][probe]["httpGet"]["httpHeaders"]
        assert headers == [{"name": "Host", "value": "crm.example.org"}]


def test_helm_secrets_only_by_reference_and_every_variable_is_real():
    docs = render()
    assert not by_kind(docs, "Secret"), "the chart must not create Secrets (values would hold them)"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    config = by_kind(docs, "ConfigMap")["prod-caravan"]["data"]
    assert set(config) <= KNOWN, set(config) - KNOWN
    assert not set(config) & SECRETS, "a secret setting in the ConfigMap"
    assert not set(values["config"]) & SECRETS
    assert set(values["secrets"]["required"]) == REQUIRED
    assert set(values["secrets"]["optional"]) <= SECRETS
    for name, container in containers(docs).items():
        env = {e["name"]: e for e in container["env"]}
        assert set(env) <= KNOWN, set(env) - KNOWN
        available = set(env) | (set(config) if container.get("envFrom") else set())
        assert REQUIRED <= available, f"{name} lacks {REQUIRED - available}"
        for secret in set(env) & (SECRETS | {"DATABASE_URL", "REDIS_URL"}):  # URLs carry passwords
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "caravan-secrets", secret
        if container.get("envFrom"):
            assert container["envFrom"] == [{"configMapRef": {"name": "prod-caravan"}}]
    with pytest.raises(helm.HelmError, match="existingSecret"):
        with helm.Chart.load(str(CHART)) as chart:
            chart.render({}, name="prod", namespace="travel", is_install=True)


def test_helm_optional_pgbouncer():
    assert not [d for d in render() if "pgbouncer" in d["metadata"]["name"]]
    with pytest.raises(helm.HelmError, match="migrations must not go through PgBouncer"):
        render({"pgbouncer": {"enabled": True}, "migrations": {"databaseUrlKey": "DATABASE_URL"}})
    docs = render({"pgbouncer": {"enabled": True, "postgresHost": "pg.internal"}})
    deployment = by_kind(docs, "Deployment")["prod-caravan-pgbouncer"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["POOL_MODE"]["value"] == "transaction" and env["DB_HOST"]["value"] == "pg.internal"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "caravan-secrets", "key": "POSTGRES_PASSWORD"}
    script = (INFRA / "pgbouncer" / "entrypoint.sh").read_text()
    for variable in env:
        assert "${" + variable in script, f"pgbouncer's entrypoint ignores {variable}"
    assert by_kind(docs, "Service")["prod-caravan-pgbouncer"]["spec"]["ports"][0]["port"] == 6432
    assert by_kind(docs, "ConfigMap")["prod-caravan"]["data"]["DATABASE_POOLING"] == "transaction"
    with pytest.raises(helm.HelmError, match="pooling"):
        render({"database": {"pooling": "statement"}})


# --- the entry points, run from the checkout ------------------------------------------------------

def process_env(**extra: str) -> dict:
    """What a container would have: the test database and Redis, the required secrets (as the
    test run has them), plain static files (no collectstatic here)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BIND", "PORT", "WEB_WORKERS", "CELERY_BEAT_SCHEDULE")}
    env.update({"DATABASE_URL": database_url(connection.settings_dict), "STATICFILES_MANIFEST": "0",
                "FAST_PASSWORD_HASHING": "1", "PLATFORM_DOMAIN": "localhost", **extra})
    return env


def start(subcommand: str, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "infra.entrypoint", subcommand], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        pytest.fail(f"still running {timeout} s after SIGTERM")


def wait_for(condition, process: subprocess.Popen, log: Path, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"{what}: exited with {process.returncode}\n{log_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s\n{log_tail(log)}")
        time.sleep(0.3)


def web_answers(env: dict, tmp_path: Path, name: str):
    """Start ``entrypoint web``, check it is gunicorn itself (exec) answering /healthz and /readyz
    (via ``entrypoint probe``, compose's health check), and that SIGTERM stops it."""
    log = tmp_path / f"{name}.log"
    process = start("web", env, log)
    try:
        port = env["PORT"]
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/healthz", "localhost") == 200, process, log,
                 f"{name}: /healthz")
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"gunicorn" in cmdline, "the entry point did not exec gunicorn"
        probe = subprocess.run([sys.executable, "-m", "infra.entrypoint", "probe", "/healthz", "/readyz"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, f"{probe.stderr}\n{log_tail(log)}"
        missing = subprocess.run([sys.executable, "-m", "infra.entrypoint", "probe", "/healthz", "/no-such-page"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "/no-such-page: HTTP 404" in missing.stderr
        assert http_status(f"http://127.0.0.1:{port}/accounts/login/", f"alpha.localhost:{port}") == 200
    finally:
        code = stop(process)
    assert code == 0, log_tail(log)
    assert b"Shutting down: Master" in log.read_bytes()


@pytest.mark.django_db
@pytest.mark.slow
def test_entrypoint_migrate_runs_migrate_platform(agencies):
    result = subprocess.run([sys.executable, "-m", "infra.entrypoint", "migrate", "--verbosity", "0"], cwd=ROOT,
                            env=process_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"Migrated public, template and (\d+ of )?{len(agencies)} agencies", result.stdout), result.stdout


@pytest.mark.django_db
@pytest.mark.slow
def test_entrypoint_web_serves(tmp_path):
    web_answers(process_env(BIND="127.0.0.1", PORT=str(free_port()), WEB_WORKERS="1"), tmp_path, "web")


@pytest.mark.django_db
@pytest.mark.slow
def test_entrypoint_web_through_pgbouncer_as_compose_configures_it(tmp_path):
    """The compose topology: infra/pgbouncer/entrypoint.sh's PgBouncer (transaction pooling, SCRAM
    password) in front of the test database, web with DATABASE_POOLING=transaction behind it."""
    pgbouncer = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if pgbouncer is None:
        pytest.skip("pgbouncer is not installed (make pgbouncer, or apt-get install pgbouncer)")
    settings_dict = connection.settings_dict
    port, password = free_port(), "s3cret-for-the-test"
    # Where PgBouncer's user may write (pytest's base temp dir is private to root).
    config = Path(tempfile.mkdtemp(prefix="caravan-deploy-pgbouncer-")) / "config"
    bouncer_env = {"PATH": f"{Path(pgbouncer).parent}:{os.environ['PATH']}", "DB_HOST": settings_dict.get("HOST") or "127.0.0.1",
                   "DB_PORT": str(settings_dict.get("PORT") or 5432), "DB_NAME": settings_dict["NAME"],
                   "DB_USER": settings_dict.get("USER") or "postgres", "DB_PASSWORD": password,
                   "LISTEN_ADDR": "127.0.0.1", "LISTEN_PORT": str(port), "CONFIG_DIR": str(config),
                   "DEFAULT_POOL_SIZE": "2"}
    command = ["sh", str(INFRA / "pgbouncer" / "entrypoint.sh")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root (the image runs it as uid 10002)
        config.parent.chmod(0o755)
        shutil.chown(config.parent, "postgres")
        command = ["runuser", "-u", "postgres", "--", "env", *(f"{k}={v}" for k, v in bouncer_env.items()), *command]
    log = tmp_path / "pgbouncer.log"
    with open(log, "wb") as out:
        bouncer = subprocess.Popen(command, env=bouncer_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        import psycopg

        url = f"postgres://{bouncer_env['DB_USER']}:{password}@127.0.0.1:{port}/{settings_dict['NAME']}"

        def accepts() -> bool:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                return False

        wait_for(accepts, bouncer, log, "pgbouncer", timeout=30)
        with psycopg.connect(url.rsplit("/", 1)[0] + "/pgbouncer", autocommit=True, prepare_threshold=None) as admin:
            settings = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
        assert settings["pool_mode"] == "transaction" and settings["auth_type"] == "scram-sha-256"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.replace(password, "wrong"), connect_timeout=2).close()
        web_answers(process_env(BIND="127.0.0.1", PORT=str(free_port()), WEB_WORKERS="1", DATABASE_URL=url,
                                DATABASE_POOLING="transaction", DB_CONN_MAX_AGE="0"), tmp_path, "web-pgbouncer")
    finally:
        stop(bouncer)
        shutil.rmtree(config.parent, ignore_errors=True)


@pytest.mark.django_db
@pytest.mark.slow
def test_entrypoint_worker_and_scheduler_start_and_stop(tmp_path):
    queue = f"caravan-deploy-{os.getpid()}-{free_port()}"
    env = process_env(CELERY_QUEUE=queue, WORKER_CONCURRENCY="1",
                      CELERY_BEAT_SCHEDULE=str(tmp_path / "beat-schedule"))
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start("worker", env, worker_log)
    try:
        wait_for(lambda: b"ready." in worker_log.read_bytes(), worker, worker_log, "worker")
        assert f"-> {queue}".encode() in worker_log.read_bytes() or queue.encode() in worker_log.read_bytes()
        beat = start("scheduler", env, beat_log)
        try:
            wait_for(lambda: b"beat: Starting" in beat_log.read_bytes(), beat, beat_log, "scheduler")
            wait_for(lambda: list(tmp_path.glob("beat-schedule*")), beat, beat_log, "beat's schedule file")
        finally:
            assert stop(beat) == 0, log_tail(beat_log)
    finally:
        code = stop(worker, timeout=60)
        subprocess.run([sys.executable, "-m", "celery", "-A", "caravan", "purge", "-f", "-Q", queue], cwd=ROOT,
                       env=entrypoint.environment(env), capture_output=True, timeout=60)
    assert code == 0, log_tail(worker_log)
