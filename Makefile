# The README's two set-up commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean train train-atypical train-variant guard-reference quantize

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Each `make demo` writes a new folder demo_out/run-YYYYmmdd-HHMMSS and never deletes anything: a review made in
# an earlier run's folder stays. Remove old runs yourself when you no longer need them.
DEMO_OUT := demo_out/run-$(shell date +%Y%m%d-%H%M%S)

demo: $(STAMP)
	@if [ -e "$(DEMO_OUT)" ]; then echo "error: $(DEMO_OUT) exists; run make demo again in a second" >&2; exit 2; fi
	mkdir -p "$(DEMO_OUT)"
	@echo "== Results of this run go to $(DEMO_OUT)/"
	@echo "== Mitotic count on sample_slides/ (synthetic tiles, 0.25 um/px)"
	$(BIN)/spindledx score sample_slides --out "$(DEMO_OUT)/score"
	@echo "== Batch QA over sample_slides/manifest.csv (report: $(DEMO_OUT)/batch/report.html)"
	$(BIN)/spindledx batch sample_slides/manifest.csv --out "$(DEMO_OUT)/batch" --no-progress
	@echo "== Reference IHC panel (lung)"
	$(BIN)/spindledx panel "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung
	@echo "== Case workup: the reference panel (lung) with the sample tiles as H&E evidence"
	$(BIN)/spindledx case "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung --tiles sample_slides \
		--case-id DEMO-1 --specimen "sample tiles" --pdf --out "$(DEMO_OUT)/case"
	@echo "== Teaching: the knowledge base as a static site and LMS versus GIST"
	$(BIN)/spindledx kb site --out "$(DEMO_OUT)/kb_site"
	$(BIN)/spindledx compare leiomyosarcoma gist --top 6
	@echo "== Done. Open $(DEMO_OUT)/case/case.html (on paper: case.pdf), $(DEMO_OUT)/batch/report.html and $(DEMO_OUT)/kb_site/index.html"

test: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench

# demo_out/ is left alone: it may hold a review someone made; delete the runs you no longer need yourself.
clean:
	rm -rf $(VENV) .pytest_cache

# Train + cross-validate the mitosis CNN on ../shared/data (~60 min on 2 cores), then ship it as package data:
# src/spindledx/detection/models/{mitosis_cnn.onnx,mitosis_model.json}; the generated card goes to docs/model-card.md.
# The shipped detector runs the 8-bit graph built from it (mitosis_cnn_int8.onnx, `make quantize`, ~3 min).
MITOSIS_RUN ?= /tmp/spindledx-mitosis-run
train: $(STAMP)
	$(BIN)/pip install --quiet torch==2.13.0 onnx onnxscript
	$(BIN)/python scripts/train_mitosis.py --final --cv --strong-aug --epochs 20 --out $(MITOSIS_RUN)
	$(BIN)/python scripts/finalize_mitosis_model.py $(MITOSIS_RUN) --scheme gated8
	$(BIN)/python scripts/quantize_mitosis_model.py

quantize: $(STAMP)
	$(BIN)/pip install --quiet onnx
	$(BIN)/python scripts/quantize_mitosis_model.py

# Atypical/normal head (~25 min on 2 busy cores): ships src/spindledx/detection/models/atypical_{cnn.onnx,model.json}.
ATYPICAL_RUN ?= /tmp/spindledx-atypical-run
train-atypical: $(STAMP)
	$(BIN)/pip install --quiet torch==2.13.0 onnx onnxscript
	$(BIN)/python scripts/train_atypical.py --out $(ATYPICAL_RUN) --epochs 10 --per-epoch 3072 --ship

# A detector variant (atnorm-md + other-tissue negatives from wheels), cross-validation only.
# tiatoolbox and stardist are installed without dependencies: only an H&E image inside each wheel is read.
VARIANT_RUN ?= /tmp/spindledx-mitosis-variant
train-variant: $(STAMP)
	$(BIN)/pip install --quiet torch==2.13.0 onnx onnxscript
	$(BIN)/pip install --quiet --no-deps tiatoolbox==2.1.3 stardist==0.9.2
	$(BIN)/python scripts/train_mitosis.py --cv --strong-aug --atnorm --pkg-neg --epochs 12 --schemes tta1,gated8 \
		--out $(VARIANT_RUN)

# Out-of-distribution reference of the guard (needs ../shared/data; ~2 min).
guard-reference: $(STAMP)
	$(BIN)/python scripts/build_guard_reference.py
