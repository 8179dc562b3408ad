# Two commands do all set-up: `make demo` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Everything a run writes stays under data/ (gitignored).
export PIPELINE_DATA_DIR ?= $(CURDIR)/data
export AIRFLOW_HOME ?= $(PIPELINE_DATA_DIR)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM := 4
export MLFLOW_DISABLE_TELEMETRY := true
export SPARK_LOCAL_IP := 127.0.0.1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo test lint bench-etl bench-train load-online-retail evaluate-online-retail clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, with its exact pin: it takes the CPU wheel; a looser pin pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jobs.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

ONLINE_RETAIL ?= $(CURDIR)/../shared/data/online_retail/online_retail.csv.gz

# The whole Online Retail log (541,909 rows) as one Spark application: clean, gate, sessionize, gate.
load-online-retail: $(STAMP)
	test -f $(ONLINE_RETAIL) || { echo "missing $(ONLINE_RETAIL) (../shared/data/online_retail)"; exit 1; }
	$(BIN)/python -m jobs.ingest --source online_retail --path $(ONLINE_RETAIL) --from 2010-12-01 --to 2011-12-09

EVAL := $(BIN)/python -m behavior_model.evaluate --source online_retail --path $(ONLINE_RETAIL) \
	--purchase-horizon 30 --lookback 365 --timezone Europe/London --out benchmarks/results/online_retail_eval.json

# Both Online Retail test settings of the evaluation protocol; baselines, transformer and ablations.
evaluate-online-retail: $(STAMP)
	test -f $(ONLINE_RETAIL) || { echo "missing $(ONLINE_RETAIL) (../shared/data/online_retail)"; exit 1; }
	$(EVAL) --test-cutoff 2011-09-01 --churn-horizon 90 --train-cutoffs 2011-03-01,2011-04-01,2011-05-01,2011-06-01
	$(EVAL) --test-cutoff 2011-10-01 --churn-horizon 60 --append \
		--train-cutoffs 2011-03-01,2011-04-01,2011-05-01,2011-06-01,2011-07-01,2011-08-01

bench-train: $(STAMP)
	$(BIN)/python -m benchmarks.train

bench-etl: $(STAMP)
	$(BIN)/python -m benchmarks.etl --events 1000000 10000000

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(PIPELINE_DATA_DIR)
