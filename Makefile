# SmartZone developer commands. Everything installs into .venv under the repo.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONPATH := $(CURDIR)/layers/shared/python:$(CURDIR)

.PHONY: install browser run demo test lint fmt unit integration infra bench synth synth-cn deploy clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Headless Chromium for the dashboard test: Debian's chromium (Playwright's own browser download
# is not used) and a Chinese font, installed with apt-get when missing.
CHROMIUM ?= /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -f $(CJK_FONT) ]; then \
	  echo "installing chromium and fonts-wqy-microhei (dashboard tests run them headless)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-wqy-microhei; \
	fi

install: $(STAMP) browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/shared/python functions infra tools bench
	$(BIN)/python -m tools.seed_data --check
	$(BIN)/python -m tools.catalogue_seed --check

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Exit code 5 means "no tests collected": not a failure.
test: lint browser
	$(BIN)/pytest -n 2 --dist loadfile tests; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

infra: $(STAMP)
	$(BIN)/pytest tests/infra

# Every benchmark in bench/ prints its figures and writes bench/results/<name>.json.
bench: $(STAMP)
	@for b in bench/*.py; do n=$$(basename $$b .py); [ "$$n" = "__init__" ] && continue; \
	  echo "== bench/$$n"; $(BIN)/python -m bench.$$n || exit 1; done

# Environments (infra/environments.py): make synth ENV=prod, make deploy ENV=prod REGION=cn-north-1.
# Without ENV: stack SmartZone with the stack's defaults (what the local platform and tests use).
# Only from the command line (a shell's own $ENV, the sh startup file, must not leak in).
ifneq ($(origin ENV),command line)
ENV :=
endif
REGION ?=
CDK_ARGS ?=
ENV_CONTEXT = $(if $(ENV),-c env=$(ENV)) $(if $(REGION),-c region=$(REGION))
synth: $(STAMP)
	$(BIN)/python infra/app.py $(ENV_CONTEXT) $(CDK_ARGS)

deploy: $(STAMP)
	@test -n "$(ENV)" || { echo "make deploy needs ENV=dev|staging|prod"; exit 2; }
	npx cdk deploy $(ENV_CONTEXT) $(CDK_ARGS) --require-approval broadening

# AWS China has no Cognito user pools: the TOKEN authorizer needs the district's OIDC provider.
OIDC_ISSUER ?= https://idp.example.gov.cn
OIDC_JWKS_URL ?= $(OIDC_ISSUER)/.well-known/jwks.json
OIDC_AUDIENCE ?= smartzone
synth-cn: $(STAMP)
	$(BIN)/python infra/app.py -c region=cn-north-1 -c oidc_issuer=$(OIDC_ISSUER) \
	  -c oidc_jwks_url=$(OIDC_JWKS_URL) -c oidc_audience=$(OIDC_AUDIENCE)

# The whole platform locally: emulated AWS, MQTT broker, HTTP API, simulator, dashboard.
# make run SIM=0 (no device simulator), RESET=1 (fresh seed data), API_PORT/MQTT_PORT/DASHBOARD_PORT.
SIM ?= 1
RESET ?= 0
run: $(STAMP)
	$(BIN)/python -m infra.local.platform $(if $(filter 0,$(SIM)),--no-sim) $(if $(filter 1,$(RESET)),--reset)

# The seed story, step by step with timings, on in-process emulated AWS (no ports).
demo: $(STAMP)
	$(BIN)/python -m tools.demo

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache build
