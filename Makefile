# Corral developer entry points. Every target installs what it needs on a bare machine
# and is quick when it already has: uv is bootstrapped into ~/.cache/corral, the virtualenv
# comes from uv.lock, and the Kubernetes binaries are built once into ~/.cache/corral/bin.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# CORRAL_CACHE moves the whole cache (hack/ reads it too); hack/rehearse-fresh.sh sets it.
CACHE ?= $(or $(CORRAL_CACHE),$(HOME)/.cache/corral)
UV_VERSION := 0.13.8
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Bytecode compiled at install, as in the image: processes start warm even where
# PYTHONDONTWRITEBYTECODE keeps Python from caching it (the operator imports ~1,300 modules).
export UV_COMPILE_BYTECODE := 1
export CORRAL_CACHE := $(CACHE)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock Makefile
	$(UV) sync --locked --all-groups
	$(PY) -m compileall -q src
	touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv from uv.lock

uv.lock: pyproject.toml | $(UV)
	$(UV) lock

.PHONY: binaries
binaries: venv ## build the pinned Kubernetes, etcd, kwok, helm, node and otelcol binaries into the cache
	$(PY) hack/cluster.py build

.PHONY: model-server
model-server: venv ## install llama-cpp-python + Gemma 3 270M into ~/.cache/corral (once)
	$(PY) hack/llamaserver.py install

.PHONY: redis
redis: venv ## unpack Debian's redis-server into ~/.cache/corral (once): the tests' shared state store
	$(PY) hack/redisserver.py install

.PHONY: browser
browser: venv ## install Debian's Chromium (apt-get, once): the console's browser tests drive it headless
	$(PY) hack/browser.py install

.PHONY: cluster-up
cluster-up: venv ## start the local control plane, kwok and the real node (containerd, kubelet, kube-proxy, CoreDNS)
	$(PY) hack/cluster.py up

.PHONY: cluster-down
cluster-down: venv ## stop exactly what cluster-up started, restore the host, remove its state
	$(PY) hack/cluster.py down

.PHONY: image
image: venv ## build the image from the Dockerfile (buildah, cached by content), load it into the node
	$(PY) hack/cluster.py image

.PHONY: lint
lint: venv ## ruff, mypy (strict), import-linter contracts, CRD staleness
	$(VENV)/bin/ruff check src tests hack bench deploy
	$(VENV)/bin/ruff format --check src tests hack bench deploy
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

.PHONY: fmt
fmt: venv ## format and autofix
	$(VENV)/bin/ruff format src tests hack bench deploy
	$(VENV)/bin/ruff check --fix src tests hack bench deploy

.PHONY: crds
crds: venv ## regenerate crds/, the chart's copy and docs/reference.md from corral.api
	$(VENV)/bin/corral crds --output-dir crds
	$(PY) -m corral.api.reference docs/reference.md
	rm -f charts/corral/files/crds/*.yaml
	cp crds/*.yaml charts/corral/files/crds/

.PHONY: docs
docs: crds ## regenerate docs/reference.md and docs/metrics.md from the code
	$(PY) hack/metricsdoc.py --write

.PHONY: manifests
manifests: crds ## regenerate deploy/ (plain manifests) from the Helm chart
	$(PY) hack/deploymanifests.py --write

.PHONY: test
test: venv binaries model-server redis browser ## every test, including those against the real API server
	UV=$(UV) $(VENV)/bin/pytest

.PHONY: screenshots
screenshots: venv binaries browser ## regenerate docs/console-*.png: the console in headless Chromium on the local cluster
	$(VENV)/bin/pytest tests/e2e/console/screenshots_console.py -p no:cacheprovider -q
	$(VENV)/bin/pytest tests/e2e/pods/screenshots_chat.py -p no:cacheprovider -q

.PHONY: rehearse-fresh
rehearse-fresh: ## CI's .ci/run on a clean clone of HEAD with empty uv, pip and Corral caches
	bash hack/rehearse-fresh.sh

.PHONY: bench
bench: venv binaries ## benchmarks: runtime + operator (~20 min); rewrites bench/RESULTS.md
	$(PY) -m bench

.PHONY: demo
demo: venv binaries model-server ## helm install, real pods, a chat through the Agent's Service (local cluster)
	$(PY) hack/demo.py up

.PHONY: demo-down
demo-down: venv ## stop what make demo started
	$(PY) hack/demo.py down
