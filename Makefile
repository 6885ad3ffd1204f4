# Two commands for people: `make demo` and `make test`. Each installs what is missing first.
BUILD    ?= build
JOBS     ?= $(shell nproc)
SANITIZE ?=
PREFIX   ?= /usr/local
comma    := ,

ifneq ($(SANITIZE),)
  TEST_BUILD := build-sanitize-$(subst $(comma),-,$(SANITIZE))
  TEST_FLAGS := -DCMAKE_BUILD_TYPE=Debug -DTASKFARM_SANITIZE=$(SANITIZE) -DTASKFARM_BUILD_BENCH=OFF
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

.PHONY: deps build demo test bench install clean
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

bench: build
	@TASKFARM_BENCH_DEPS=1 scripts/install-deps
	@bench/run $(BUILD) $(if $(QUICK),--quick,)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	@rm -rf $(BUILD) build-sanitize-* out
