# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: demo test setup setup-test lint format bench

demo: setup
	GRADIO_ANALYTICS_ENABLED=False $(PY) app.py --host $(HOST) --port $(PORT)

test: setup-test
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest -q $(PYTEST_ARGS)

setup:
	scripts/bootstrap.sh app

setup-test:
	scripts/bootstrap.sh test

lint: setup-test
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup-test
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

bench: setup-test
	$(PY) benchmarks/bench_models.py
