# The few sessions people run. `make dev` builds the compiled core in place (no LTO, fast) so
# `PYTHONPATH=python pytest` works without reinstalling; `make install` is the real wheel build.
PYTHON ?= python3
BUILD_DEV := build/dev
BUILD_BENCH := build/bench

.PHONY: dev install test reliability lint stubs bench bench-peers clean

dev:
	cmake -S . -B $(BUILD_DEV) -G Ninja -DCMAKE_BUILD_TYPE=Release -DV28_LTO=OFF \
	    -Dpybind11_DIR=$$($(PYTHON) -m pybind11 --cmakedir) -DPython_EXECUTABLE=$$(which $(PYTHON))
	cmake --build $(BUILD_DEV)
	cp $(BUILD_DEV)/_core*.so python/v28quant/

install:
	$(PYTHON) -m pip install ".[test]"

test:
	$(PYTHON) -m pytest

# The reliability suite at full counts (20 kill trials, ...); `pytest` alone runs it bounded.
reliability:
	V28_RELIABILITY_FULL=1 PYTHONPATH=python $(PYTHON) -m pytest -m reliability tests/reliability -p no:cacheprovider

lint:
	ruff check python tests benchmarks
	ruff format --check python tests benchmarks
	mypy --strict

stubs: dev
	PYTHONPATH=python $(PYTHON) -m pybind11_stubgen v28quant._core -o build/stubs
	cp build/stubs/v28quant/_core.pyi python/v28quant/_core.pyi

bench:
	cmake -S . -B $(BUILD_BENCH) -G Ninja -DCMAKE_BUILD_TYPE=Release -DV28_BUILD_PYTHON=OFF \
	    -DV28_BUILD_BENCHMARKS=ON
	cmake --build $(BUILD_BENCH)
	for b in $(BUILD_BENCH)/bench_*; do $$b; done

bench-peers:
	for p in benchmarks/peers/*.py; do $(PYTHON) $$p; done

clean:
	rm -rf build python/v28quant/_core*.so
