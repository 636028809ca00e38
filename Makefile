# saoy: `make run` sets everything up and starts the server; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := tesseract-ocr tesseract-ocr-vie tesseract-ocr-eng poppler-utils fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-roboto-unhinted fonts-ocr-b \
	redis-server postgresql chromium softhsm2
ARGS ?=

.PHONY: setup system venv build face-photos run test fuzz lint bench clean

setup: system venv build

# System packages from Debian; apt-get runs only when one is missing.
system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Dependencies are reinstalled only when the project's metadata changes.
.stamp-venv: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q "Cython>=3.0" "numpy>=1.26" "grpcio-tools>=1.62"
	$(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	touch $@

venv: .stamp-venv

# Stubs and Cython kernels, rebuilt in place on every call (fast when nothing changed).
build: venv
	$(BIN)/python setup.py -q generate_stubs build_ext --inplace

# Real photographs for the identity tests: tests/test_images of the face_recognition 1.3.0
# source distribution from PyPI (the sdist only; nothing of it is installed or imported).
FACE_PHOTOS := .cache/face_recognition/tests/test_images
face-photos: $(FACE_PHOTOS)/obama.jpg

$(FACE_PHOTOS)/obama.jpg: | venv
	rm -rf .cache/face_recognition .cache/sdist && mkdir -p .cache/sdist .cache/face_recognition
	$(BIN)/pip download -q --no-deps --no-binary :all: --dest .cache/sdist face_recognition==1.3.0
	tar -xzf .cache/sdist/face_recognition-1.3.0.tar.gz -C .cache/face_recognition \
	  --strip-components=1 face_recognition-1.3.0/tests/test_images
	test -f $@ && touch $@

run: setup
	$(BIN)/saoy serve $(ARGS)

test: setup face-photos
	$(BIN)/python -m pytest $(ARGS)

# Long fuzzing runs, one harness after the other (fuzz/README.md); new inputs go to
# .cache/fuzz/<target>, findings to .cache/fuzz/<target>/crash-* and the like. ARGS goes to
# libFuzzer, e.g. make fuzz ARGS="-max_total_time=3600" FUZZ_TARGETS=documents.
FUZZ_TARGETS := admission qrpayload documents pdfverify certify authenticate
FUZZ_ARGS ?= -max_total_time=600 -timeout=2 -rss_limit_mb=1024
fuzz: setup
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p .cache/fuzz/$$t/corpus && \
	  echo "fuzzing $$t" && \
	  $(BIN)/python fuzz/fuzz_$$t.py .cache/fuzz/$$t/corpus fuzz/corpus/$$t \
	    -artifact_prefix=.cache/fuzz/$$t/ $(FUZZ_ARGS) $(ARGS) || status=1; \
	done; exit $$status

lint: setup
	$(BIN)/ruff check core server native clients tests benchmarks fuzz
	$(BIN)/mypy core server clients

# The city's peak, open loop, for 120 s: fails when p95 latency is over 5 s (benchmarks/city.py;
# e.g. make bench ARGS="--duration 60 --workers 2").
bench: setup
	$(BIN)/python benchmarks/city.py $(ARGS)

clean:
	rm -rf build $(VENV) .stamp-venv native/*.c native/*.so proto/saoy/v1/*_pb2*.py*
