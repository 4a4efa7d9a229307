# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# `make run`: the bot on this machine, on SQLite (data/rnnbot.db). Without TELEGRAM_BOT_TOKEN (in the
# environment or .env) it runs in the offline Telegram sandbox and prints the page's URL; with one,
# it serves real Telegram. A model is trained into MODEL_DIR first if none is there (with a progress bar).
MODEL_DIR ?= runs/kjv
MODEL_CMD ?= $(VENV)/bin/rnnbot train --corpus kjv --run-dir $(MODEL_DIR) --max-minutes 5
HAS_TOKEN := import sys; from bot.settings import Settings; sys.exit(not Settings().telegram_bot_token.get_secret_value())

run: $(STAMP)
	@if [ -f $(MODEL_DIR)/best.safetensors ]; then :; \
	elif [ -f $(MODEL_DIR)/last.resume.pt ]; then \
		echo "make run: finishing the interrupted training in $(MODEL_DIR)"; \
		$(VENV)/bin/rnnbot train --resume $(MODEL_DIR) || exit $$?; \
	else \
		echo "make run: no model in $(MODEL_DIR) yet: training one (about 5 minutes, once)"; \
		$(MODEL_CMD) || exit $$?; \
	fi
	@if $(PY) -c '$(HAS_TOKEN)' 2>/dev/null; then \
		echo "make run: TELEGRAM_BOT_TOKEN is set: serving on Telegram (Ctrl+C stops)"; \
		$(VENV)/bin/rnnbot db upgrade || exit $$?; \
		exec $(VENV)/bin/rnnbot serve; \
	else \
		exec $(VENV)/bin/rnnbot sandbox $(SANDBOX_ARGS); \
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

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
