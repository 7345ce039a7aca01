# The front door. `make help` lists every target.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
PYTEST  := $(PY) -m pytest
# make test / test-e2e run on this many pytest-xdist workers; each e2e worker drives an embedded
# stack of its own (ports 4599, 4609, ...), so the tests that wait on retries overlap. Tests are
# handed out one at a time (--maxschedchunk 1), the slow ones first (tests/conftest.py), so
# those spread over the workers instead of queueing on one. TEST_WORKERS=1 for one stack.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist load --maxschedchunk 1
# With IAM enforced on the embedded stack (DEVSTACK_IAM=off turns it off), make test and
# test-e2e also fail on a permission no e2e test used and none explains (tests/conftest.py).

# Lambda packages are built for one Python runtime and CPU. The local stack runs them on this
# machine, so by default they match the host; AWS deployments use AWS_RUNTIME / AWS_ARCH.
HOST_RUNTIME  := python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
HOST_ARCH     := $(shell uname -m | sed -e 's/aarch64/arm64/' -e 's/amd64/x86_64/')
LAMBDA_RUNTIME ?= $(HOST_RUNTIME)
LAMBDA_ARCH    ?= $(HOST_ARCH)
AWS_RUNTIME    ?= python3.13
AWS_ARCH       ?= arm64
PACKAGES       := build/$(LAMBDA_RUNTIME)-$(LAMBDA_ARCH)
# The functions and their layers: lambdas/functions.json (the one list; scripts/tooling/functions.py)
FUNCTIONS_JSON := lambdas/functions.json
FUNCTIONS      := $(shell $(PYTHON) -c 'import json, sys; print(*json.load(sys.stdin))' < $(FUNCTIONS_JSON))
LAYERS         := $(shell $(PYTHON) -c 'import json, sys; print(*sorted({l for f in json.load(sys.stdin).values() for l in f["layers"]}))' < $(FUNCTIONS_JSON))
LAMBDA_SOURCES := $(shell find lambdas -name '*.py' -not -path '*/__pycache__/*')

# terraform for AWS deployments (make plan / make deploy ENV=...): the production root
# terraform/envs/aws with terraform/envs/$(ENV).tfvars, and terraform/envs/$(ENV).s3.tfbackend for
# the remote state (docs/deploy.md). terraform/envs/local is the emulators' root (make up).
ENV         ?= prod
ENV_TFVARS  := terraform/envs/$(ENV).tfvars
ENV_BACKEND := terraform/envs/$(ENV).s3.tfbackend
DEPLOY_DIR  := .local/deploy-$(ENV)
DEPLOY_ROOT := $(DEPLOY_DIR)/envs/aws
TF_ROOTS    := aws local
TF_ENV      := $(PY) -m tooling tf --data-dir terraform-$(ENV) --chdir $(CURDIR)/$(DEPLOY_ROOT) --
# make plan-check compares the production plan with that of this git ref (the deployed release).
PLAN_CHECK_BASE ?= main

# LocalStack under Docker Compose (docker-compose.yml): its Lambda containers run python3.13 on
# the Docker host's CPU.
LOCALSTACK_ENDPOINT ?= http://localhost:4566
export LOCALSTACK_ENDPOINT
CHECKOV_VENV := .venv-checkov

# make load: uploads in the burst (scripts/load.py --n); TIMEOUT=seconds overrides its wait bound.
N ?= 200
# make capacity: N uploads (100 unless N is given), of the working tree, of REF=<git ref>, or of
# BASE=<git ref> and the working tree side by side (scripts/capacity.py).
CAPACITY_N := $(if $(filter file,$(origin N)),100,$(N))
# make fuzz: requests schemathesis generates per API operation, and its seed (any run can be
# replayed with the seed it prints).
FUZZ_EXAMPLES ?= 300
SEED ?= 1

.PHONY: help install lock build up down status demo test test-unit test-integration test-e2e \
        lint fmt plan deploy plan-check clean bench quality load web browser bundle localstack-up \
        localstack-down test-localstack reconcile redrive reprocess migrate capacity cdn-key fuzz \
        tf-docs

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-17s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------------------------
# Set-up and packaging
# ---------------------------------------------------------------------------------------------

install: $(VENV)/.installed ## Create .venv with every runtime and development dependency

$(VENV)/.installed: requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

lock: ## Re-resolve requirements/dev.txt from requirements/dev.in
	$(PY) -m pip install --quiet -r requirements/dev.in
	{ echo "# Resolved lock of requirements/dev.in for CPython 3.11+ on Linux; regenerate with 'make lock'."; \
	  $(PY) -m pip freeze --exclude-editable; } > requirements/dev.txt

build: $(addprefix $(PACKAGES)/,$(addsuffix .zip,$(FUNCTIONS) $(LAYERS))) ## Build function zips and layers (LAMBDA_RUNTIME, LAMBDA_ARCH; default: this host)

$(addprefix $(PACKAGES)/,$(addsuffix .zip,$(FUNCTIONS))) &: $(LAMBDA_SOURCES) $(FUNCTIONS_JSON) scripts/build.py | install
	$(PY) scripts/build.py --runtime $(LAMBDA_RUNTIME) --arch $(LAMBDA_ARCH) functions

$(PACKAGES)/%.zip: layers/%/requirements.txt scripts/build.py | install
	$(PY) scripts/build.py --runtime $(LAMBDA_RUNTIME) --arch $(LAMBDA_ARCH) layer $*

bundle: $(addprefix $(PACKAGES)/bundled/,$(addsuffix .zip,$(FUNCTIONS))) ## Function zips with their layers inside, for a Lambda without layers (LocalStack community)

$(addprefix $(PACKAGES)/bundled/,$(addsuffix .zip,$(FUNCTIONS))) &: $(addprefix $(PACKAGES)/,$(addsuffix .zip,$(FUNCTIONS) $(LAYERS))) $(FUNCTIONS_JSON) scripts/build.py
	$(PY) scripts/build.py --runtime $(LAMBDA_RUNTIME) --arch $(LAMBDA_ARCH) bundle

# ---------------------------------------------------------------------------------------------
# The embedded local stack (moto + the local Lambda runtime; no Docker)
# ---------------------------------------------------------------------------------------------

up: build ## Start the local stack (or update it) and apply the Terraform to it
	$(PY) -m devstack up

down: ## Stop the local stack (its state lives in memory: images, items and queued jobs are gone)
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "no stack was running"; fi

reconcile: ## Run the reconciler now (ARGS="--orphans", "--dry-run", "--stuck-after 60"; docs/operations.md)
	$(PY) scripts/recover.py reconcile $(ARGS)

redrive: ## Move the workers' DLQ messages back to their jobs queues (docs/operations.md)
	$(PY) scripts/recover.py redrive $(ARGS)

reprocess: ## Bring existing images up to the deployed renditions settings (ARGS="--dry-run", "--wait 300"; docs/operations.md)
	$(PY) scripts/reprocess.py $(ARGS)

cdn-key: install ## Make a key pair for the CDN's signed URLs: private key to SSM, tfvars lines printed (ENV=prod KEY=<id>; docs/deploy.md)
	$(PY) scripts/cdn_keys.py --tfvars $(ENV_TFVARS) --key-id $(KEY) $(ARGS)

migrate: ## Give a media table's older items the keys of the current indexes (ARGS="--dry-run", "--outputs F"; docs/deploy.md)
	$(PY) scripts/migrate.py $(ARGS)

status: ## Show what the local Lambda runtime is running
	$(PY) -m devstack status

demo: build ## Run the product on the local stack: upload the sample images, show what happened (KEEP=1 leaves it up)
	$(PY) scripts/demo.py $(if $(KEEP),--keep) $(if $(FORMATS),--extra-formats $(FORMATS))

web: ## Serve the browser upload demo (web/) for the running local stack (make up first)
	$(PY) scripts/web.py

# ---------------------------------------------------------------------------------------------
# LocalStack (Docker): the same Terraform, the same e2e tests
# ---------------------------------------------------------------------------------------------

# LocalStack community does not apply layers: its functions get bundled zips (bundle_layers).
localstack-up: install ## Start LocalStack (docker compose) and apply the Terraform to it
	$(MAKE) bundle LAMBDA_RUNTIME=python3.13 LAMBDA_ARCH=$(HOST_ARCH)
	$(PY) -m devstack localstack up

localstack-down: install ## Stop LocalStack, remove its volume and its Terraform state
	$(PY) -m devstack localstack down

# Without a LocalStack stack to test, the run fails (it would test nothing); LOCALSTACK_OPTIONAL=1
# makes it a skip, said in one line (devstack localstack probe exits 3 for it).
test-localstack: install ## The e2e tier against LOCALSTACK_ENDPOINT: fails when no stack answers (LOCALSTACK_OPTIONAL=1 skips)
	@answer=0; $(PY) -m devstack localstack probe || answer=$$?; \
	if [ $$answer = 0 ]; then E2E_BACKEND=localstack $(PYTEST) tests/e2e; \
	elif [ $$answer != 3 ]; then exit $$answer; fi

# ---------------------------------------------------------------------------------------------
# Tests and checks
# ---------------------------------------------------------------------------------------------

test: build browser ## Run every test tier (unit, integration, e2e on the local stack)
	IAM_COVERAGE=enforce $(PYTEST) $(PARALLEL) tests

test-unit: install ## Unit tests: pure code, no network
	$(PYTEST) tests/unit

test-integration: install ## Integration tests: handlers against moto's mock_aws, in process
	$(PYTEST) tests/integration

test-e2e: build browser ## End-to-end tests on the local stack (started for the session if not up)
	IAM_COVERAGE=enforce $(PYTEST) $(PARALLEL) tests/e2e

bench: build ## Image engine vs the tutorial way vs libvips, and handler cold init (not a test)
	$(PY) scripts/bench.py

quality: install ## Duplicates (recall on transformed copies, false positives, index bands) and crops' points of interest, measured on the corpus (not a test)
	$(PY) scripts/quality.py

load: build ## Burst of N uploads (N=200) of real photos: every image READY or FAILED, announced once? (not a test)
	$(PY) scripts/load.py --n $(N) $(if $(TIMEOUT),--timeout $(TIMEOUT))

capacity: build ## Capacity and cost per image from a real run: N=100 uploads; REF=<git ref> measures a ref, BASE=<ref> compares it with the working tree; FORMATS=AVIF,WEBP adds extra formats (not a test)
	$(PY) scripts/capacity.py --n $(CAPACITY_N) $(if $(REF),--ref $(REF)) $(if $(BASE),--base $(BASE)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(KEEP),--keep) $(if $(FORMATS),--extra-formats $(FORMATS))

fuzz: install ## Fuzz the running stack's upload API (make up) from docs/openapi.yaml: schemathesis, every check (FUZZ_EXAMPLES=300, SEED=1; not a test)
	@test -f .local/outputs.json || { echo "no local stack is up: make up" >&2; exit 1; }
	@mkdir -p .local/fuzz
	$(VENV)/bin/schemathesis run docs/openapi.yaml --checks all \
	  --url "$$($(PY) -c 'import json; print(json.load(open(".local/outputs.json"))["api_url"]["value"])')" \
	  --header "X-Api-Key: $$($(PY) -c 'import json; print(json.load(open(".local/outputs.json"))["api_key"]["value"])')" \
	  --tls-verify .local/tls/ca.pem --max-examples $(FUZZ_EXAMPLES) --seed $(SEED) --workers 2 \
	  --report junit --report-dir .local/fuzz

browser: node_modules/.package-lock.json ## What the browser test needs: Debian's chromium (installed if root) and playwright-core
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed (apt-get install chromium): the browser test will be skipped"; fi; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm is not installed: the browser test will be skipped"; fi

lint: install $(CHECKOV_VENV)/.installed ## ruff, terraform fmt -check and validate, module READMEs current, checkov (zero failed checks), IAM policies (parliament)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	terraform fmt -check -recursive terraform
	$(PY) -m tooling tf-docs --check
	for root in $(TF_ROOTS); do \
	  $(PY) -m tooling tf --data-dir terraform-lint-$$root --chdir $(CURDIR)/terraform/envs/$$root -- init -input=false -backend=false >/dev/null; \
	  echo "terraform/envs/$$root:"; $(PY) -m tooling tf --data-dir terraform-lint-$$root --chdir $(CURDIR)/terraform/envs/$$root -- validate; \
	done
	$(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform --quiet --compact --skip-download
	$(PY) -m devstack.iam_lint

# checkov has a large dependency tree of its own: it lives in its own virtualenv.
$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt
	@touch $@

# Both plans run against a moto server of their own (scripts/tooling/plan_check.py); the tests
# plan the production example beside the local one on the embedded stack.
plan-check: build ## The production example's plan vs PLAN_CHECK_BASE's (default main): moves, adds, changes, destroys; without AWS
	$(PY) -m tooling plan-check --base $(PLAN_CHECK_BASE) --runtime $(LAMBDA_RUNTIME) --arch $(LAMBDA_ARCH)
	$(PYTEST) tests/e2e/test_deployments.py

fmt: install ## Format Python and Terraform sources, and regenerate the modules' READMEs
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	terraform fmt -recursive terraform
	$(PY) -m tooling tf-docs

tf-docs: install ## Regenerate the inputs/outputs tables of terraform/modules/*/README.md from the .tf files
	$(PY) -m tooling tf-docs

# ---------------------------------------------------------------------------------------------
# AWS
# ---------------------------------------------------------------------------------------------

# Deployments run in .local/deploy-$(ENV)/envs/aws: links to the files of terraform/envs/aws
# (beside a link to terraform/modules, so that its ../../modules sources resolve), plus the
# environment's backend (S3 with native locking when terraform/envs/$(ENV).s3.tfbackend exists;
# otherwise a local state file, terraform/envs/$(ENV).tfstate, git-ignored).
plan: install ## terraform plan for AWS (ENV=prod: terraform/envs/$(ENV).tfvars; packages for AWS_RUNTIME / AWS_ARCH)
	@test -f $(ENV_TFVARS) || { echo "no $(ENV_TFVARS): copy terraform/envs/prod.tfvars.example to it and edit (docs/deploy.md)"; exit 1; }
	$(MAKE) build LAMBDA_RUNTIME=$(AWS_RUNTIME) LAMBDA_ARCH=$(AWS_ARCH)
	mkdir -p $(DEPLOY_ROOT)
	ln -sfn $(CURDIR)/terraform/modules $(DEPLOY_DIR)/modules
	find $(DEPLOY_ROOT) -maxdepth 1 -type l -name '*.tf' -delete
	for f in terraform/envs/aws/*.tf; do ln -sfn $(CURDIR)/$$f $(DEPLOY_ROOT)/$$(basename $$f); done
	cp terraform/envs/aws/.terraform.lock.hcl $(DEPLOY_ROOT)/
	if [ -f $(ENV_BACKEND) ]; then \
	  printf 'terraform {\n  backend "s3" {}\n}\n' > $(DEPLOY_ROOT)/backend.tf; \
	  $(TF_ENV) init -input=false -backend-config=$(CURDIR)/$(ENV_BACKEND); \
	else \
	  echo "no $(ENV_BACKEND): the state stays in terraform/envs/$(ENV).tfstate (docs/deploy.md: remote state)"; \
	  printf 'terraform {\n  backend "local" {\n    path = "%s"\n  }\n}\n' $(CURDIR)/terraform/envs/$(ENV).tfstate > $(DEPLOY_ROOT)/backend.tf; \
	  $(TF_ENV) init -input=false; \
	fi
	$(TF_ENV) plan -input=false -var-file=$(CURDIR)/$(ENV_TFVARS) -var build_dir=$(CURDIR)/build \
	  -var lambda_runtime=$(AWS_RUNTIME) -var lambda_architecture=$(AWS_ARCH) -out=$(CURDIR)/.local/$(ENV).tfplan

deploy: plan ## Apply the plan made by `make plan ENV=...` to AWS
	$(TF_ENV) apply -input=false $(CURDIR)/.local/$(ENV).tfplan

clean: down ## Remove build outputs, local stack state and caches (keeps .venv)
	rm -rf build .local out .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
