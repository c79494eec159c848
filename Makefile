# pyqemu: a thin wrapper over ninja and meson test, as QEMU's Makefile is.
# Run ./configure first; it creates build/ (or a build tree with its own Makefile
# that includes this one).

SRC_PATH ?= $(CURDIR)
BUILD_DIR ?= $(SRC_PATH)/build
PYVENV := $(BUILD_DIR)/pyvenv/bin
NINJA := $(PYVENV)/ninja
# meson, when ninja reruns it, finds ninja through this (not PATH).
export NINJA
MESON := $(PYVENV)/meson
MTEST := $(MESON) test -C $(BUILD_DIR) --print-errorlogs --num-processes 2
SUMMARY := $(PYVENV)/python3 $(SRC_PATH)/scripts/test-summary.py $(BUILD_DIR)

.PHONY: all check bench fuzz install clean guest run \
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

# Long fuzz campaigns: every target (or FUZZ_TARGETS) for FUZZ_OPS operations or
# FUZZ_SECONDS each, FUZZ_JOBS at a time; prints operations, paths covered and
# failures per target; failing inputs go to $(BUILD_DIR)/fuzz/findings.
# FUZZ_GUEST_SECONDS: how long each run of a CPU-driven campaign's guest lasts.
FUZZ_OPS ?= 1000000
FUZZ_GUEST_SECONDS ?= 20
FUZZ_SECONDS ?= inf
FUZZ_JOBS ?= 2
FUZZ_SEED ?= 1
FUZZ_TARGETS ?=
fuzz: all
	cd $(SRC_PATH) && env PYTHONPATH=$(SRC_PATH):$(BUILD_DIR) \
	  PYTHONPYCACHEPREFIX=$(BUILD_DIR)/pycache PYQEMU_SOURCE_ROOT=$(SRC_PATH) \
	  PYQEMU_BUILD_ROOT=$(BUILD_DIR) FUZZ_GUEST_SECONDS=$(FUZZ_GUEST_SECONDS) \
	  $(PYVENV)/python3 -m tests.fuzz \
	  --ops $(FUZZ_OPS) --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) \
	  --seed $(FUZZ_SEED) $(foreach t,$(FUZZ_TARGETS),--target $(t))

install: all
	$(MESON) install -C $(BUILD_DIR) --no-rebuild

clippy pyfmt pyfmt-fix mypy doc: $(BUILD_DIR)/build.ninja
	$(NINJA) -C $(BUILD_DIR) $@

update-buildoptions: $(BUILD_DIR)/build.ninja
	cd $(SRC_PATH) && $(MESON) introspect --buildoptions meson.build \
	  | $(PYVENV)/python3 scripts/meson-buildoptions.py > scripts/meson-buildoptions.sh

clean:
	$(NINJA) -C $(BUILD_DIR) -t clean

# The Linux guest: Debian's arm64 kernel and a busybox initramfs, fetched and
# checked into $(GUEST_DIR) by scripts/fetch-guest.py (a no-op once there).
# `make run` boots it on the virt board with the console on this terminal;
# QEMU=qemu-system-aarch64 runs it on another launcher, ARGS=... adds options,
# KERNEL=/INITRD=/APPEND= boot something else (docs/user/linux.rst).
GUEST_DIR ?= $(BUILD_DIR)/guest
QEMU ?= $(BUILD_DIR)/pyqemu-system-aarch64
KERNEL ?= $(GUEST_DIR)/Image
INITRD ?= $(GUEST_DIR)/initramfs.cpio
APPEND ?= console=ttyAMA0 quiet
MEMORY ?= 256M
PYTHON ?= $(firstword $(wildcard $(PYVENV)/python3) python3)

guest:
	$(PYTHON) $(SRC_PATH)/scripts/fetch-guest.py --dir $(GUEST_DIR)

run: $(if $(filter $(GUEST_DIR)/%,$(KERNEL) $(INITRD)),guest) \
     $(if $(filter $(BUILD_DIR)/pyqemu-%,$(QEMU)),all)
	$(QEMU) -M virt -cpu cortex-a57 -accel tcg -m $(MEMORY) -nographic \
	  -kernel $(KERNEL) -initrd $(INITRD) -append "$(APPEND)" $(ARGS)

help:
	@echo "make                  build everything (ninja -C $(BUILD_DIR))"
	@echo "make check            run every test suite but bench"
	@echo "make check-SUITE      run one suite: unit, lint, doc, ..."
	@echo "make bench            run the benchmarks and print their figures"
	@echo "make fuzz             long fuzz campaigns (FUZZ_OPS, FUZZ_SECONDS, FUZZ_TARGETS,"
	@echo "                      FUZZ_JOBS, FUZZ_SEED, FUZZ_GUEST_SECONDS); figures and"
	@echo "                      failures per target"
	@echo "make clippy|pyfmt|pyfmt-fix|mypy|doc   the gates and the docs"
	@echo "make install          install under the configured prefix"
	@echo "make guest            fetch the Linux guest (kernel, initramfs) into $(GUEST_DIR)"
	@echo "make run              boot it on pyqemu (QEMU=qemu-system-aarch64: on QEMU;"
	@echo "                      ARGS=... more options)"
	@echo "make update-buildoptions   regenerate scripts/meson-buildoptions.sh"
