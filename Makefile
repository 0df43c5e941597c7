# Kameko: the two commands are `make run` and `make test`; everything else is a helper.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps peers build run test test-unit test-asan bench fuzz clean

all: build

deps:
	@bash tools/deps.sh

# npm packages of the local protocol peers (pinned by their lockfiles)
peers: deps
	@bash tools/peers.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# The browser room (see README): open the printed URL, join with a name, talk. Without a browser:
# `make run ARGS=demo` (the offline demo conversation) or `ARGS="replay ..."`.
run: build
	@echo "make run: starting the browser room (the offline demo without a browser: ./$(BUILD)/kameko demo)"
	./$(BUILD)/kameko $(ARGS)

# Every test: the normal build, then the sanitizer build, then each fuzz target briefly.
FUZZ_SECONDS ?= 15
test: build peers
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory fuzz

test-asan: deps peers
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DKMK_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD_ASAN) -j $(JOBS) -- --no-print-directory
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS) -LE slow

bench: build
	@bash bench/run.sh $(BUILD)

fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKMK_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@MAKEFLAGS= cmake --build build-fuzz -j $(JOBS) --target fuzzers -- --no-print-directory
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
