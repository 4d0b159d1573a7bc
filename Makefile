# The README's two set-up commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean train bench sample-slides

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@echo "== Mitotic count on sample_slides/ (synthetic tiles, 0.25 um/px)"
	$(BIN)/spindledx score sample_slides --out demo_out
	@echo "== Reference IHC panel (lung)"
	$(BIN)/spindledx panel "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung

test: $(STAMP)
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
