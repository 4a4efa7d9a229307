# rnnbot: one image for the bot (default), the scheduler, migrations and training.
#   docker build -t rnnbot .
#   docker run --env-file .env -v rnnbot-data:/data rnnbot            # rnnbot serve, SQLite in /data
# Offline (PyTorch's index unreachable): put the torch wheel in a directory of the build context
#   pip download torch==2.13.0 --no-deps -d deploy/wheels
#   docker build --build-arg TORCH_WHEELS=deploy/wheels -t rnnbot .    # (make test-deploy does this)
# Lint: hadolint --failure-threshold warning Dockerfile (tests/deploy/test_docker_files.py runs it).

# ---- build: a virtualenv holding CPU PyTorch and the project ----
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# CPU-only PyTorch, in its own layer (it rarely changes): the default index's wheel pulls several GB
# of CUDA libraries. The version matches pyproject.toml's pin. From PyTorch's CPU index, or with
# TORCH_WHEELS=DIR (a directory in the build context) from the CPU wheel there (+cpu: only that
# wheel matches, never PyPI's CUDA build) and its dependencies from PyPI.
# deploy/wheels holds only a README unless a wheel is put there, so the default build copies nothing.
ARG TORCH_WHEELS=""
COPY ${TORCH_WHEELS:-deploy/wheels}/ /tmp/torch-wheels/
RUN if [ -n "$TORCH_WHEELS" ]; then \
        pip install --no-cache-dir --find-links /tmp/torch-wheels "torch==2.13.0+cpu" ; \
    else \
        pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu ; \
    fi \
    && rm -rf /tmp/torch-wheels

# A C compiler for the native int8 LSTM that setup.py builds (models/csrc); only the build stage
# has it. Without it the install would go on without the kernel and generation would take the
# slower torch path.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# The other dependencies, from pyproject.toml alone: a change to the code does not reinstall them.
# [project].dependencies (torch's pin is already satisfied) and the build backend [build-system].requires.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print(*p["project"]["dependencies"], *p["build-system"]["requires"], sep="\n")' > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself. .dockerignore keeps out the virtualenv, runs, data, tests and any .env.
# No build isolation: the backend is installed above; no index is needed for this step.
# -P: import the installed package (with the built kernel), not the source tree in /src.
COPY . .
RUN pip install --no-cache-dir --no-build-isolation --no-deps . \
    && pip check \
    && python -P -c "from models.native_lstm import native_kernel; assert native_kernel(), 'no native kernel'" \
    && python -c "import torch; assert not torch.cuda.is_available() and torch.__version__.endswith('+cpu')"

# ---- runtime: the virtualenv on a clean slim image, run as a non-root user ----
FROM python:3.11-slim-bookworm AS runtime

# Paths are absolute: relative defaults (data/..., runs/kjv) would depend on the working directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    DATABASE_URL=sqlite:////data/rnnbot.db \
    MODEL_RUN_DIR=/data/runs/kjv \
    HEALTH_HOST=0.0.0.0 \
    HEALTH_PORT=8090

RUN groupadd --system --gid 10001 rnnbot \
    && useradd --system --no-log-init --uid 10001 --gid rnnbot --home-dir /data --shell /usr/sbin/nologin rnnbot \
    && mkdir -p /data /models \
    && chown rnnbot:rnnbot /data /models

COPY --from=build /opt/venv /opt/venv

WORKDIR /data
USER 10001:10001
# /data: the SQLite database and a trained run in MODEL_RUN_DIR (served instead of the bundled model
# when it exists), when the image runs on its own (`docker run -v rnnbot-data:/data`). No MODEL_PATH:
# it would win over both, and the image must serve its bundled model without a trained run.
# Not declared a VOLUME: a declared volume would leave an anonymous volume behind for every
# container that mounts nothing there (under compose only bot and scheduler mount one, botdata,
# for their outboxes in data/outbox).
# /models exists (owned by rnnbot) so a named volume mounted there is writable by the trainer.
# 8090: the health endpoint; 8443: the webhook server in webhook mode (WEBHOOK_URL)
EXPOSE 8090 8443

# GET /healthz on HEALTH_PORT: 200 when the database answers and a model is loaded (bot/health.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot.health"]

CMD ["rnnbot", "serve"]
