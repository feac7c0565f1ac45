# The README's two commands are `make demo` and `make test`; both set up what is missing.
.PHONY: dev demo test integration e2e images lint kube-bins clean

PY := .venv/bin

dev:            ## .venv with every component; afterwards .venv/bin/mt5db works
	@scripts/setup.sh dev

demo: dev       ## the main job on one machine: embedded PostgreSQL, API, replay of the real EURUSD H1 file
	$(PY)/mt5db demo

lint: dev       ## ruff (lint + format check), mypy --strict, import boundaries
	$(PY)/ruff check .
	$(PY)/ruff format --check .
	$(PY)/mypy
	$(PY)/lint-imports

test:           ## everything CI runs: setup, lint, the suite against real services, then the e2e tier
	@scripts/setup.sh e2e
	@$(MAKE) --no-print-directory lint
	$(PY)/pytest --ignore=tests/e2e $(PYTEST_ARGS)
	$(PY)/pytest tests/e2e $(PYTEST_ARGS)

integration:    ## unit and integration tiers only (no node, no images): the quick loop while developing
	@scripts/setup.sh test
	$(PY)/pytest --ignore=tests/e2e $(PYTEST_ARGS)

e2e:            ## the e2e tier alone: images, a node whose pods run, the platform end to end (docs/e2e.md)
	@scripts/setup.sh e2e
	$(PY)/pytest tests/e2e $(PYTEST_ARGS)

images:         ## build the api, training, operator and test-database images (buildah, no daemon)
	@scripts/setup.sh images
	images/build.sh

kube-bins:      ## build (once) the kube-apiserver, kube-controller-manager and etcd the tests run
	tests/cluster/build.sh

clean:          ## remove the work tree's environment (caches outside it stay)
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache
