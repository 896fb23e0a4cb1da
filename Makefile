# The two entry points of the README, plus the build presets. Every target installs what it needs.
.PHONY: setup build quickstart test asan cuda fuzz clean

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

# libFuzzer harnesses of fuzz/ under ASan/UBSan (docs/fuzzing.md): clang and its runtime from Debian,
# the harnesses in build/fuzz, then each one for FUZZ_SECONDS on a working copy of its seed corpus
# (build/fuzz/corpus/NAME); crashes are written to build/fuzz/artifacts/. FUZZ_HARNESSES picks some.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= json config schema tool_import mcp chat tokenizer safetensors math http
fuzz: setup
	@command -v clang++ >/dev/null && dpkg -s libclang-rt-dev >/dev/null 2>&1 || \
	  { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	    apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null; }
	cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DK2GYM_FUZZ=ON -DK2GYM_TESTS=OFF -DK2GYM_BENCH=OFF $(LAUNCHER) >/dev/null
	cmake --build build/fuzz --target $(addprefix fuzz_,$(FUZZ_HARNESSES)) -j $(JOBS)
	@mkdir -p build/fuzz/artifacts
	@for h in $(FUZZ_HARNESSES); do \
	  mkdir -p build/fuzz/corpus/$$h && { cp -n fuzz/corpus/$$h/* build/fuzz/corpus/$$h/ || true; } && \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s" && \
	  build/fuzz/fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/artifacts/$$h- build/fuzz/corpus/$$h 2>build/fuzz/$$h.log || \
	    { tail -40 build/fuzz/$$h.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|Done" build/fuzz/$$h.log | tr '\n' ' '; echo; \
	done

clean:
	rm -rf build
