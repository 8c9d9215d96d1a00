# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv and install t2a-ray into it (editable, with the dev tools) on first use.
VENV  ?= .venv
PY    := $(VENV)/bin/python
# torch first and pinned: on the CPU machines this takes the CPU build from local disk; a bare
# `torch` pulled in by another package would fetch several GB of CUDA wheels. Override on GPU hosts.
TORCH ?= torch==2.13.0
RUN   ?= demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: demo test test-fast lint clean
demo: $(VENV)/.installed
	$(VENV)/bin/t2a-ray launch --out runs --name $(RUN)

# Two test processes (JOBS=1: one); each test takes the next from a shared queue (worksteal), so the long
# end-to-end sweeps do not pile up in one process. Two, not more: the suite is CPU-bound on two cores
# (benchmarks/results/suite_time_cpu.md). It ends with the 25 slowest tests, where the time goes.
JOBS  ?= 2
test: $(VENV)/.installed
	$(VENV)/bin/pytest -q -n $(JOBS) --dist worksteal --durations=25

# The inner loop: every test but the end-to-end sweeps (marked slow; `make test` and CI run them too).
test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -q -n $(JOBS) --dist worksteal -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) runs t2a-report .pytest_cache
