# pyqemu: a thin wrapper over ninja and meson test, as QEMU's Makefile is.
# Run ./configure first; it creates build/ (or a build tree with its own Makefile
# that includes this one).

SRC_PATH ?= $(CURDIR)
BUILD_DIR ?= $(SRC_PATH)/build
PYVENV := $(BUILD_DIR)/pyvenv/bin
NINJA := $(PYVENV)/ninja
MESON := $(PYVENV)/meson
MTEST := $(MESON) test -C $(BUILD_DIR) --print-errorlogs --num-processes 2
SUMMARY := $(PYVENV)/python3 $(SRC_PATH)/scripts/test-summary.py $(BUILD_DIR)

.PHONY: all check bench install clean \
        update-buildoptions clippy pyfmt pyfmt-fix mypy doc help

all: $(BUILD_DIR)/build.ninja
	$(NINJA) -C $(BUILD_DIR)

$(BUILD_DIR)/build.ninja:
	@echo "ERROR: no build tree in $(BUILD_DIR): run ./configure first" >&2
	@exit 1

# Every suite but bench; meson's own summary, then one "N passed, N failed" line.
check: all
	@$(MTEST); status=$$?; $(SUMMARY) || status=1; exit $$status

check-%: all
	@$(MTEST) --suite $*; status=$$?; $(SUMMARY) || status=1; exit $$status

bench: all
	$(MESON) test -C $(BUILD_DIR) --benchmark --suite bench --verbose

install: all
	$(MESON) install -C $(BUILD_DIR) --no-rebuild

clippy pyfmt pyfmt-fix mypy doc: $(BUILD_DIR)/build.ninja
	$(NINJA) -C $(BUILD_DIR) $@

update-buildoptions: $(BUILD_DIR)/build.ninja
	cd $(SRC_PATH) && $(MESON) introspect --buildoptions meson.build \
	  | $(PYVENV)/python3 scripts/meson-buildoptions.py > scripts/meson-buildoptions.sh

clean:
	$(NINJA) -C $(BUILD_DIR) -t clean

help:
	@echo "make                  build everything (ninja -C $(BUILD_DIR))"
	@echo "make check            run every test suite but bench"
	@echo "make check-SUITE      run one suite: unit, lint, doc, ..."
	@echo "make bench            run the benchmarks and print their figures"
	@echo "make clippy|pyfmt|pyfmt-fix|mypy|doc   the gates and the docs"
	@echo "make install          install under the configured prefix"
	@echo "make update-buildoptions   regenerate scripts/meson-buildoptions.sh"
