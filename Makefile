# The two entry points of the README, plus the build presets. Every target installs what it needs.
.PHONY: setup build quickstart test asan cuda clean

JOBS ?= 2
WERROR := $(if $(CI),ON,OFF)
# ccache (installed by setup) makes rebuilds in fresh clones cheap; paths are hashed relative to
# the clone so any checkout location shares the cache.
LAUNCHER := $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache,)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
export CCACHE_MAXSIZE := 5G

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset default -DK2GYM_WERROR=$(WERROR) $(LAUNCHER) >/dev/null
	cmake --build --preset default -j $(JOBS)

# The main job on the embedded default (CPU, tiny model, one SQLite file): scripts/quickstart.sh.
quickstart: build
	bash scripts/quickstart.sh

test: build
	ctest --preset default

asan: setup
	cmake --preset asan -DK2GYM_WERROR=$(WERROR) $(LAUNCHER) >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

# Compiles and links the CUDA preset (nvcc from /usr/local/cuda); needs no GPU.
# CUDA_ARGS lets CI skip tests/benches there (-DK2GYM_TESTS=OFF -DK2GYM_BENCH=OFF).
cuda: setup
	cmake --preset cuda -DK2GYM_WERROR=$(WERROR) $(LAUNCHER) $(CUDA_ARGS) >/dev/null
	cmake --build --preset cuda -j $(JOBS)

clean:
	rm -rf build
