# Cadence's two commands: `make run` and `make test`. Everything else is a convenience.
# Builds live in build/ (release, what `make run` starts), build-asan/ (ASan+UBSan, what the test
# suite runs), build-fuzz/ (clang + libFuzzer).

JOBS      ?= 2
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
CMAKE_GEN  = cmake -S . -Wno-dev
export CADENCE_DATA ?= $(CURDIR)/cadence-data

.PHONY: all deps build asan fuzz-build run test unit e2e lint format valgrind fuzz fuzz-short bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@$(CMAKE_GEN) -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory
	@ln -sf $(BUILD)/compile_commands.json compile_commands.json

asan: deps
	@$(CMAKE_GEN) -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DCADENCE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j$(JOBS) -- --no-print-directory

fuzz-build: deps
	@CC=clang $(CMAKE_GEN) -B $(FUZZ) -DCMAKE_BUILD_TYPE=Debug -DCADENCE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ) -j$(JOBS) --target fuzzers -- --no-print-directory

# Sets up the data directory on the embedded defaults (SQLite, local master key), then serves the
# onboarding pages. `cadence serve` prints the URL, and on a fresh data directory how to create
# the first admin. Issue a brand's link with `cadence tenant link TENANT`.
run: build
	@$(BUILD)/cadence init
	@echo
	@echo "Starting Cadence on http://$${CADENCE_LISTEN:-127.0.0.1:8080} (Ctrl-C stops it). Next, in another shell:"
	@echo "  $(BUILD)/cadence tenant add --name \"Acme Outdoors\" --email ops@acme.example"
	@echo "  $(BUILD)/cadence tenant link acme-outdoors      # the brand's onboarding link"
	@exec $(BUILD)/cadence serve --listen $${CADENCE_LISTEN:-127.0.0.1:8080}

# The whole suite: sanitizer build under CTest (unit + end-to-end + contract), valgrind over the
# unit tests, a short fuzz run of every target, and the linters.
test: asan build fuzz-build
	@cd $(ASAN) && ctest --output-on-failure -j$(JOBS)
	@$(MAKE) --no-print-directory valgrind fuzz-short lint

valgrind: build
	@bash scripts/valgrind-unit.sh $(BUILD)

fuzz-short: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ) 15

fuzz: fuzz-build
	@bash scripts/fuzz.sh $(FUZZ) $${FUZZ_SECONDS:-600}

lint: build
	@bash scripts/lint.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) compile_commands.json
