# The Docker Compose stack (included by the Makefile). `make up`, then `make launch CONFIG=...`.
#
# ENV_FILE is the stack's settings and secrets (created from .env.example with random secrets on
# the first `make up`); COMPOSE_FILES adds override files; DOCKER names the docker CLI;
# RUN_STOP_GRACE is how many seconds `make down` gives a run container after SIGTERM.

ENV_FILE ?= .env
ENV_EXAMPLE := .env.example
DOCKER ?= docker
COMPOSE_FILES ?= -f docker-compose.yml
STACK_WAIT ?= 900
RUN_STOP_GRACE ?= 60
SERVICE ?=
COMPOSE = $(DOCKER) compose --env-file "$(ENV_FILE)" $(COMPOSE_FILES)
STACK_ENV = python3 infra/scripts/stack_env.py
STACK_GET = $(shell python3 infra/scripts/stack_env.py get "$(ENV_FILE)" $(1) 2>/dev/null)

.PHONY: up down logs ps clean launch client-env stack-check-env stack-check-docker stack-urls stack-dvc-local stack-stop-runs

stack-check-env:
	@if [ -f "$(ENV_FILE)" ]; then $(STACK_ENV) check "$(ENV_FILE)" $(ENV_EXAMPLE); fi

stack-check-docker:
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "error: '$(DOCKER)' is not installed: the stack needs Docker Engine with Compose v2 (https://docs.docker.com/engine/install/). Nothing was changed." >&2; exit 2; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "error: the Docker engine does not answer ('$(DOCKER) info' failed): start it, or check DOCKER_HOST and your access to the socket. Nothing was changed." >&2; exit 2; }
	@$(DOCKER) compose version >/dev/null 2>&1 || { \
	  echo "error: '$(DOCKER) compose' is missing: install the Compose v2 plugin. Nothing was changed." >&2; exit 2; }

up: stack-check-env stack-check-docker ## build and start the Docker Compose stack, wait until healthy, print the URLs
	@[ -f "$(ENV_FILE)" ] || $(STACK_ENV) create "$(ENV_FILE)" $(ENV_EXAMPLE)
	@mkdir -p "$$($(STACK_ENV) get "$(ENV_FILE)" DATA_DIR)"
	GIT_COMMIT="$$(git rev-parse HEAD 2>/dev/null || echo unknown)$$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo -dirty)" \
	  $(COMPOSE) build
	$(COMPOSE) up -d --remove-orphans --wait --wait-timeout $(STACK_WAIT)
	@$(MAKE) --no-print-directory stack-dvc-local stack-urls

stack-urls:
	@echo ""
	@echo "  Dagster UI     http://127.0.0.1:$(call STACK_GET,DAGSTER_PORT)   (login: PROXY_USER / PROXY_PASSWORD in $(ENV_FILE))"
	@echo "  MLflow UI      http://127.0.0.1:$(call STACK_GET,MLFLOW_PORT)   (same login)"
	@echo "  MinIO console  http://127.0.0.1:$(call STACK_GET,MINIO_CONSOLE_PORT)   (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD in $(ENV_FILE))"
	@echo "  S3 API         http://127.0.0.1:$(call STACK_GET,MINIO_API_PORT)   (DVC remote with DVC's key; .dvc/config.local)"
	@echo ""
	@echo "  make launch CONFIG=configs/training/lightgbm.yaml    make logs    make ps    make down"

stack-dvc-local: # point DVC on this host at the stack's S3 API with DVC's key (bucket dvc only)
	@$(STACK_ENV) dvc-local "$(ENV_FILE)" .dvc/config.local

down: stack-check-docker ## stop the stack and any run in progress (volumes: runs, MLflow data, artifacts are kept)
	@[ -f "$(ENV_FILE)" ] || { echo "error: $(ENV_FILE) not found: nothing to stop" >&2; exit 2; }
	@$(MAKE) --no-print-directory stack-stop-runs
	$(COMPOSE) down --remove-orphans

# Stop the project's run containers with SIGTERM and up to RUN_STOP_GRACE seconds (a run then marks
# its MLflow and Dagster runs failed itself; SIGKILL, as `docker rm -f`, would leave them RUNNING),
# then remove them (they also hold the model-cache volume).
stack-stop-runs:
	@ids=$$($(DOCKER) ps -aq --filter "label=com.energy-forecast.project=$(call STACK_GET,COMPOSE_PROJECT_NAME)"); \
	  if [ -n "$$ids" ]; then \
	    running=$$($(DOCKER) ps -q --filter "label=com.energy-forecast.project=$(call STACK_GET,COMPOSE_PROJECT_NAME)"); \
	    if [ -n "$$running" ]; then \
	      echo "stopping $$(echo $$running | wc -w) run container(s): SIGTERM, up to $(RUN_STOP_GRACE) s each"; \
	      $(DOCKER) stop -t $(RUN_STOP_GRACE) $$running >/dev/null; \
	    fi; \
	    echo "removing $$(echo $$ids | wc -w) run container(s)"; $(DOCKER) rm $$ids >/dev/null; \
	  fi

logs: stack-check-docker ## follow the stack's logs (SERVICE=dagster-daemon for one service)
	$(COMPOSE) logs --follow --tail 200 $(SERVICE)

ps: stack-check-docker ## the stack's containers and their health
	$(COMPOSE) ps --all

clean: stack-check-docker ## stop the stack and DELETE its volumes (runs, MLflow data, artifacts, DVC remote), after confirmation
	@[ -f "$(ENV_FILE)" ] || { echo "error: $(ENV_FILE) not found: nothing to clean" >&2; exit 2; }
	@if [ "$(CONFIRM)" != yes ]; then \
	  echo "This deletes the volumes of project '$(call STACK_GET,COMPOSE_PROJECT_NAME)': every Dagster run, every MLflow run, model and artifact, and the DVC remote's data."; \
	  read -r -p "Type 'yes' to delete them: " answer; \
	  [ "$$answer" = yes ] || { echo "Nothing was deleted."; exit 1; }; \
	fi
	@$(MAKE) --no-print-directory stack-stop-runs
	$(COMPOSE) down --volumes --remove-orphans

launch: venv ## launch complete_training_job for CONFIG on the stack, follow it, print the MLflow run link
	$(BIN)/python -m pipelines.launch "$(CONFIG)" --env-file "$(ENV_FILE)"

client-env: ## print exports pointing host-side MLflow clients at the stack, with the proxy's login (for eval)
	@echo "export MLFLOW_TRACKING_URI=http://127.0.0.1:$(call STACK_GET,MLFLOW_PORT)"
	@echo "export MLFLOW_TRACKING_USERNAME='$(call STACK_GET,PROXY_USER)'"
	@echo "export MLFLOW_TRACKING_PASSWORD='$(call STACK_GET,PROXY_PASSWORD)'"
	@echo "export MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=false  # presigned URLs name http://minio:9000, unknown to this host"
	@echo "export MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false"
