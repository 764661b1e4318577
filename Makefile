# Energy forecasting stack. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= configs/training/xgboost.yaml
COMPARISON ?= configs/comparisons/traditional.yaml

# Embedded defaults (no Docker): local Dagster instance and MLflow store in the checkout.
# Set any of these in the environment to override.
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.mlflow/mlflow.db
export DATA_PATH ?= $(CURDIR)/data/raw/Steel_industry_data.csv
export FORECAST_STORE_URL ?= sqlite:///$(CURDIR)/.forecasts/forecasts.db
export FORECAST_PLOTS_URI ?= $(CURDIR)/.forecasts/plots
ORIGIN ?=
TRIALS ?=
TIMEOUT ?=
SERVING_PORT ?= 8080
FROM ?= 2018-12-01
DAYS ?= 7
EVERY ?= 2

DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000

.PHONY: help venv venv-dev data demo train tune compare forecast replay serve validate dev test test-unit test-integration test-system bench bench-scale lint lock clean-local

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# Every install is hash-checked (requirements/*.lock, `make lock`). torch comes first, in its own
# hashed step, as the build TORCH_VARIANT names: cpu (default; the CPU build, from a wheel pip finds
# locally or from TORCH_CPU_INDEX) or cuda (PyPI's build with its CUDA runtime wheels, ~3 GB more).
TORCH_VARIANT ?= cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_HASHED = $(BIN)/python -m pip install --quiet --require-hashes
TORCH_SOURCE_cpu = $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX)) --find-links services/trainer/wheels
TORCH_SOURCE_cuda =

$(BIN)/.base.stamp: requirements/pip.lock requirements/base.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_HASHED) -r requirements/pip.lock
	$(PIP_HASHED) -r requirements/base.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(BIN)/.dev.stamp: requirements/pip.lock requirements/torch-$(TORCH_VARIANT).lock requirements/dev.lock pyproject.toml
	@case "$(TORCH_VARIANT)" in cpu|cuda) ;; *) echo "error: TORCH_VARIANT must be cpu or cuda, not '$(TORCH_VARIANT)'" >&2; exit 2 ;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_HASHED) -r requirements/pip.lock
	$(PIP_HASHED) --no-deps -r requirements/torch-$(TORCH_VARIANT).lock $(TORCH_SOURCE_$(TORCH_VARIANT))
	$(PIP_HASHED) -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@ $(BIN)/.base.stamp

venv: $(BIN)/.base.stamp ## virtual environment with the pinned runtime dependencies
venv-dev: $(BIN)/.dev.stamp ## ... plus Chronos (torch), the stack tools and the test tools

data: venv ## download the UCI data and check its sha256 (or check $$DATA_PATH); dvc add it, dvc push it when the stack is up
	$(BIN)/python -m energy_forecast.data.fetch --dest "$(DATA_PATH)"
	$(BIN)/python infra/scripts/data_dvc.py "$(DATA_PATH)"

demo: venv data ## train the traditional models through Dagster, locally, and print the leaderboard
	@mkdir -p "$(DAGSTER_HOME)" .mlflow
	$(BIN)/energy-forecast demo $(COMPARISON)

train: venv ## run complete_training_job for CONFIG=configs/training/<file>.yaml
	@mkdir -p "$(DAGSTER_HOME)" .mlflow
	$(BIN)/energy-forecast train $(CONFIG)

tune: venv ## run tune_model_job (Optuna) for CONFIG's tuning: block (TRIALS=, TIMEOUT= override the budget); writes <name>_tuned.yaml
	@mkdir -p "$(DAGSTER_HOME)" .mlflow
	$(BIN)/energy-forecast tune $(CONFIG) $(if $(TRIALS),--trials $(TRIALS)) $(if $(TIMEOUT),--timeout $(TIMEOUT))

compare: venv ## run compare_models_job for COMPARISON=configs/comparisons/<file>.yaml
	@mkdir -p "$(DAGSTER_HOME)" .mlflow
	$(BIN)/energy-forecast compare $(COMPARISON)

forecast: venv ## forecast the next day with the champion (ORIGIN= default: right after the data), store rows and plot
	@mkdir -p .forecasts
	$(BIN)/energy-forecast forecast $(if $(ORIGIN),--origin "$(ORIGIN)")

replay: venv ## replay DAYS real days from FROM through the operating loop (embedded: sensors ticked here), EVERY s apart
	@mkdir -p "$(DAGSTER_HOME)" .mlflow .forecasts
	$(BIN)/energy-forecast replay --from "$(FROM)" --days "$(DAYS)" --every "$(EVERY)"

serve: venv ## serve <data>-<task>@champion on 127.0.0.1:$(SERVING_PORT) (POST /invocations), following promotions
	$(BIN)/python -m energy_forecast.serving --host 127.0.0.1 --port $(SERVING_PORT)

validate: venv ## validate every training YAML without training
	$(BIN)/energy-forecast validate $(filter-out configs/training/_base.yaml,$(wildcard configs/training/*.yaml))

dev: venv ## Dagster UI on :3000 and MLflow UI on :5000 over the local stores (Ctrl-C stops both)
	@mkdir -p "$(DAGSTER_HOME)" .mlflow
	@trap 'kill 0' EXIT; \
	if [[ "$$MLFLOW_TRACKING_URI" == sqlite:* ]]; then \
	  $(BIN)/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --host 127.0.0.1 --port $(MLFLOW_PORT) & \
	fi; \
	$(BIN)/dagster dev -m pipelines.definitions --host 127.0.0.1 --port $(DAGSTER_PORT)

test: venv-dev ## every test: unit, integration (PostgreSQL, MLflow server, S3) and system (Docker)
	$(BIN)/python -m pytest -ra

test-unit: venv-dev ## fast inner loop: unit tests only
	$(BIN)/python -m pytest -ra tests/unit

test-integration: venv-dev ## integration tests only
	$(BIN)/python -m pytest -ra tests/integration

bench: venv-dev ## benchmark on the real data; writes bench/results/latest.{json,md} and the README table
	$(BIN)/python -m bench.run

bench-scale: venv-dev ## many meters: global LightGBM on 10, 30, 100 synthetic plants; writes bench/results/scale.json (not in make test)
	$(BIN)/python -m bench.scale

lint: venv-dev ## ruff
	$(BIN)/ruff check src pipelines tests bench

lock: venv-dev ## requirements/*.lock with hashes (uv pip compile; keeps versions; LOCK_ARGS=--upgrade for the newest)
	$(BIN)/python infra/scripts/lock_requirements.py $(LOCK_ARGS)

clean-local: ## delete the local demo stores (.dagster, .mlflow, .forecasts) and the replay's live series and landing folder
	rm -rf .dagster .mlflow .forecasts data/live data/landing

-include infra/stack.mk
