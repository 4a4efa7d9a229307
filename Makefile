# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run train test test-fast test-deploy lint clean

install: $(STAMP)

# setup.py builds the native int8 LSTM (models/csrc) into the package; a change to it rebuilds.
$(STAMP): pyproject.toml setup.py models/csrc/lstm_int8.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# `make run`: the bot on this machine, on SQLite (data/rnnbot.db), with the KJV model bundled in the
# package (or your own, once `make train` has put one in runs/kjv). Without TELEGRAM_BOT_TOKEN (in the
# environment or .env) it runs in the offline Telegram sandbox and prints the page's URL; with one,
# it serves real Telegram.
MODEL_DIR ?= runs/kjv
TRAIN_MINUTES ?= 5
HAS_TOKEN := import sys; from bot.settings import Settings; sys.exit(not Settings().telegram_bot_token.get_secret_value())

run: $(STAMP)
	@if $(PY) -c '$(HAS_TOKEN)' 2>/dev/null; then \
		echo "make run: TELEGRAM_BOT_TOKEN is set: serving on Telegram (Ctrl+C stops)"; \
		$(VENV)/bin/rnnbot db upgrade || exit $$?; \
		exec $(VENV)/bin/rnnbot serve; \
	else \
		exec $(VENV)/bin/rnnbot sandbox $(SANDBOX_ARGS); \
	fi

# `make train`: your own KJV model in runs/kjv (TRAIN_MINUTES, with a progress bar); an interrupted
# training is resumed. `make run` serves it instead of the bundled model from then on.
train: $(STAMP)
	@if [ -f $(MODEL_DIR)/last.resume.pt ]; then \
		echo "make train: continuing the run in $(MODEL_DIR)"; \
		exec $(VENV)/bin/rnnbot train --resume $(MODEL_DIR); \
	else \
		exec $(VENV)/bin/rnnbot train --corpus kjv --run-dir $(MODEL_DIR) --max-minutes $(TRAIN_MINUTES); \
	fi

# pytest exits 5 when it collected nothing: that must never pass as green.
test: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# ruff, configured in pyproject.toml; CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# `make test-deploy`: the compose stack built and run for real with Docker (as root, Debian): the
# engine (started and stopped again if none runs), the base images (local stand-ins where no
# registry answers), the image, up, healthy, down with exit codes 0, data surviving. See deploy/.
test-deploy: $(STAMP)
	deploy/test-deploy.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
