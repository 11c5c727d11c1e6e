# The two commands of the README: `make demo` (the main job) and `make test` (what CI runs).
# Both set up a local virtual environment first; every install goes through constraints.txt so the
# tested versions (and the local CPU build of torch, once a model needs it) are what you get.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test bench setup browser clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test,ray,dinov2]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/collapsebench demo --out results/demo

# The leaderboard page is tested in a real browser, Debian's chromium: installed here when missing and
# we are root (as in CI); otherwise that one test is skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest

# Speed targets live here, not in the tests: pytest-benchmark tables, side by side per group.
bench: $(STAMP)
	$(VENV)/bin/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,mean,rounds -p no:cacheprovider

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
