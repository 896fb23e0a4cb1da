# The two entry points of the README, plus the build presets. Every target installs what it needs.
.PHONY: setup build quickstart test asan cuda clean

JOBS ?= 2
WERROR := $(if $(CI),ON,OFF)

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset default -DK2GYM_WERROR=$(WERROR) >/dev/null
	cmake --build --preset default -j $(JOBS)

# The main job on the embedded default (CPU, tiny model, one SQLite file): scripts/quickstart.sh.
quickstart: build
	bash scripts/quickstart.sh

test: build
	ctest --preset default

asan: setup
	cmake --preset asan -DK2GYM_WERROR=$(WERROR) >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

# Compiles and links the CUDA preset (nvcc from /usr/local/cuda); needs no GPU.
cuda: setup
	cmake --preset cuda -DK2GYM_WERROR=$(WERROR) >/dev/null
	cmake --build --preset cuda -j $(JOBS)

clean:
	rm -rf build
