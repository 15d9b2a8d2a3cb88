# hvm: a thin front for Meson and Ninja.
#   make          build (build/)
#   make check    install missing packages, build with ASan+UBSan, run every test
#   make demo     install, build, run the guided tour on a scratch store (kept)
#   make bench    benchmarks against qemu-img, qemu-nbd, cp and plain QEMU (optimized build)
#   make fuzz     build and run each libFuzzer target for FUZZ_SECONDS
#   make guest    the test guest (Debian cloud kernel + busybox initramfs) in build-guest/
#   make install  PREFIX=/usr/local DESTDIR=: bin/hvm, the man pages, the bash
#                 completion, the systemd units of data/systemd, ocf:hvm:VirtualMachine
#   make cluster-demo   the failover clustering story on a 3-node lab cluster (scripts/cluster)
#   make cluster-check  the same, every step checked, plus the cluster tests (t97, t98)
#   make cluster-bench  failover time of a hard node kill (optimized build)
BUILD ?= build
CHECK_BUILD ?= build-check
BENCH_BUILD ?= build-release
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
GUEST_DIR ?= build-guest
JOBS ?= 2
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps check demo bench fuzz guest install clean cluster-demo cluster-check cluster-bench

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) >/dev/null

$(CHECK_BUILD)/build.ninja:
	meson setup $(CHECK_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

$(BENCH_BUILD)/build.ninja:
	meson setup $(BENCH_BUILD) --buildtype=release >/dev/null

check: deps $(CHECK_BUILD)/build.ninja
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh || echo "make check: the test guest could not be built; runtime tests will be skipped"
	ninja -C $(CHECK_BUILD)
	JOBS=$(JOBS) HVM=$(CURDIR)/$(CHECK_BUILD)/hvm BUILD=$(CURDIR)/$(CHECK_BUILD) GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh tests/run-all.sh

# The demo prepares itself (packages, build, guest) quietly: each step's
# output goes to a log in $(BUILD) that is shown only when the step fails.
demo:
	@BUILD=$(BUILD) GUEST_DIR=$(GUEST_DIR) sh scripts/demo.sh

# Storage (bench/run.sh), VMs and checkpoints (bench/vm.sh), running VMs
# (bench/runtime.sh, with the test guest), VM networking (bench/net.sh, as
# root); each prints its own table.
bench: deps $(BENCH_BUILD)/build.ninja
	ninja -C $(BENCH_BUILD)
	HVM=$(CURDIR)/$(BENCH_BUILD)/hvm sh bench/run.sh
	HVM=$(CURDIR)/$(BENCH_BUILD)/hvm sh bench/vm.sh
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh || echo "make bench: no test guest; bench/runtime.sh skipped"
	[ ! -f $(GUEST_DIR)/vmlinuz ] || HVM=$(CURDIR)/$(BENCH_BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh bench/runtime.sh
	[ ! -f $(GUEST_DIR)/vmlinuz ] || HVM=$(CURDIR)/$(BENCH_BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh bench/boot.sh
	[ ! -f $(GUEST_DIR)/vmlinuz ] || [ "$$(id -u)" != 0 ] || HVM=$(CURDIR)/$(BENCH_BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh bench/net.sh
	[ ! -f $(GUEST_DIR)/vmlinuz ] || HVM=$(CURDIR)/$(BENCH_BUILD)/hvm BUILD=$(CURDIR)/$(BENCH_BUILD) GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh bench/migrate.sh

# Each libFuzzer target runs FUZZ_SECONDS on its corpus in
# $(FUZZ_BUILD)/corpus-TARGET (kept between runs, seeded from tests/data and
# fuzz/seeds/TARGET), one after the other; FUZZ_TARGETS picks some
# (make fuzz FUZZ_TARGETS=journal). A crash stops the run and leaves its
# input as $(FUZZ_BUILD)/crash-TARGET-*. See docs/fuzz.md.
FUZZ_TARGETS ?= vhd-open vhdx-open vm-json manifest journal
FUZZ_RUN = -rss_limit_mb=512 -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1
FUZZ_DICT_vm-json = -dict=fuzz/vm-json.dict
FUZZ_DICT_manifest = -dict=fuzz/vm-json.dict
FUZZ_DICT_journal = -dict=fuzz/vm-json.dict

fuzz: deps
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null 2>&1 || true
	ninja -C $(FUZZ_BUILD) $(addprefix fuzz/fuzz-,$(FUZZ_TARGETS))
	for t in $(FUZZ_TARGETS); do mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	    [ ! -d fuzz/seeds/$$t ] || cp -n fuzz/seeds/$$t/* $(FUZZ_BUILD)/corpus-$$t/; done
	cp -n tests/data/*.vhd $(FUZZ_BUILD)/corpus-vhd-open/ 2>/dev/null || true
	$(foreach t,$(FUZZ_TARGETS),$(FUZZ_BUILD)/fuzz/fuzz-$(t) $(FUZZ_RUN) $(FUZZ_DICT_$(t)) \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$(t)- $(FUZZ_BUILD)/corpus-$(t) &&) true

guest: deps
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh

# Reconfigured for PREFIX (and so that units added to data/systemd are seen).
install: $(BUILD)/build.ninja
	meson setup --reconfigure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	ninja -C $(BUILD)
	meson install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

clean:
	rm -rf $(BUILD) $(CHECK_BUILD) $(BENCH_BUILD) $(FUZZ_BUILD)

# Failover clustering on a real Corosync/Pacemaker cluster of namespace nodes
# (scripts/cluster/lab.sh; root, about 250 MB per node).
cluster-demo: deps all
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh
	HVM=$(CURDIR)/$(BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) bash scripts/cluster/demo.sh

cluster-check: deps $(CHECK_BUILD)/build.ninja
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh
	ninja -C $(CHECK_BUILD)
	HVM=$(CURDIR)/$(CHECK_BUILD)/hvm BUILD=$(CURDIR)/$(CHECK_BUILD) GUEST_DIR=$(CURDIR)/$(GUEST_DIR) sh tests/run-all.sh -cluster-
	HVM=$(CURDIR)/$(CHECK_BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) bash scripts/cluster/demo.sh

cluster-bench: deps $(BENCH_BUILD)/build.ninja
	@GUEST_DIR=$(GUEST_DIR) sh scripts/guest/build.sh
	ninja -C $(BENCH_BUILD)
	HVM=$(CURDIR)/$(BENCH_BUILD)/hvm GUEST_DIR=$(CURDIR)/$(GUEST_DIR) bash scripts/cluster/bench.sh
