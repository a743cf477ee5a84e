# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test docs system-deps constraints clean

# constraints.txt pins every package to a set tested together, so pip never backtracks through new releases
# (stop 40's CI spent its 5400 s in pip's resolver; with the pins the install takes ~5 min).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch is pinned first: a looser requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test,docs]"
	touch $(STAMP)

# After a dependency change in pyproject.toml: install it into .venv, run make test, then refresh the pins.
constraints:
	{ sed -n '1,/^[^#]/{/^#/p}' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Debian packages some tests and readers need: headless Chromium renders the report in a test,
# mdbtools reads Arbin .res cycler files.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v mdb-export >/dev/null 2>&1 || missing="$$missing mdbtools"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: install Debian's$$missing (sudo apt-get install$$missing) for the report-rendering and Arbin tests"; fi; \
	fi

demo: $(STAMP)
	$(BIN)/layerscope demo --out demo-output --overwrite

# Two pytest workers (pytest-xdist), a module kept on one worker so its fixtures are built once: the tests run
# single-threaded (tests/conftest.py sets OMP_NUM_THREADS=1), so two workers use CI's two cores.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

# The documentation site (API reference, conventions, validation, benchmarks, executed examples)
# into docs/_build/html; warnings are errors.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo-output .pytest_cache docs/_build docs/api docs/auto_examples
