# Two commands for people: `make demo` and `make test`. Each installs what is missing first.
# `make check` is what CI runs: the suite plain and under ASan+UBSan, and a fuzz smoke run.
BUILD    ?= build
JOBS     ?= $(shell nproc)
SANITIZE ?=
PREFIX   ?= /usr/local
comma    := ,

ifneq ($(SANITIZE),)
  TEST_BUILD := build-sanitize-$(subst $(comma),-,$(SANITIZE))
  # No benchmarks and no examples (the examples' library paths are the farm tests' too; their
  # 13 files took 135 s of CPU under ASan, at load 6), and line tables only (-g1): reports name
  # file and line still, and a file compiles 5-14 % cheaper. CI's budget is tight (docs/testing.md).
  TEST_FLAGS := -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DTASKFARM_SANITIZE=$(SANITIZE) \
                -DTASKFARM_BUILD_BENCH=OFF -DTASKFARM_BUILD_EXAMPLES=OFF
  # The fault tests crash workers on purpose: let SIGSEGV & co. kill them as they would without
  # a sanitizer (each runtime has its own variable; both know these common flags).
  crash_as_usual := handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0
  export ASAN_OPTIONS := $(crash_as_usual)
  export TSAN_OPTIONS := $(crash_as_usual):second_deadlock_stack=1
  export UBSAN_OPTIONS := print_stacktrace=1
else
  TEST_BUILD := $(BUILD)
  TEST_FLAGS := -DCMAKE_BUILD_TYPE=Release
endif
WERROR := $(if $(CI),-DTASKFARM_WERROR=ON,)

# libFuzzer targets (fuzz/): clang, ASan+UBSan, their own build folder.
FUZZ_BUILD      ?= build-fuzz
FUZZ_CXX        ?= clang++-14
FUZZ_TIME       ?= 60
FUZZ_SMOKE_TIME ?= 5
FUZZ_TARGETS    ?=

.PHONY: deps build demo test check fuzz-build fuzz fuzz-smoke bench install clean
deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(WERROR) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)

test: deps
	@cmake -S . -B $(TEST_BUILD) $(TEST_FLAGS) $(WERROR) >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

check:
	@$(MAKE) --no-print-directory test SANITIZE=
	@$(MAKE) --no-print-directory test SANITIZE=address,undefined
	@$(MAKE) --no-print-directory fuzz-smoke

fuzz-build:
	@TASKFARM_FUZZ_DEPS=1 scripts/install-deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DTASKFARM_FUZZ=ON \
	  -DTASKFARM_BUILD_TESTS=OFF -DTASKFARM_BUILD_EXAMPLES=OFF -DTASKFARM_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target taskfarm_fuzzers

fuzz: fuzz-build
	@fuzz/run $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@fuzz/run $(FUZZ_BUILD) $(FUZZ_SMOKE_TIME) $(FUZZ_TARGETS)

bench: build
	@TASKFARM_BENCH_DEPS=1 scripts/install-deps
	@bench/run $(BUILD) $(if $(QUICK),--quick,)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	@rm -rf $(BUILD) build-sanitize-* $(FUZZ_BUILD) out
