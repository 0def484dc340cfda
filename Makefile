# iketcp: one non-recursive Makefile. Everything built goes to build/.
#   make            daemon, iketcpctl, BPF objects and skeletons
#   make test       dependencies, then unit (ASan+UBSan), BPF, fuzz-corpus and netns tests
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make bench      benchmarks; make demo: the reference topology
#   make install    PREFIX=/usr/local, with the systemd unit and the Wireshark dissector

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

BUILD    ?= build
PREFIX   ?= /usr/local
CC       := gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
FUZZ_SECONDS ?= 60
V        ?= 0
Q        := $(if $(filter 1,$(V)),,@)
msg       = $(if $(filter 1,$(V)),,@printf '  %-8s %s\n' '$(1)' '$(2)';)

VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)
WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
INCS     := -Iinclude -Idaemon -I. -I$(BUILD)/skel
CPPFLAGS := -D_GNU_SOURCE -DIKETCP_VERSION='"$(VERSION)"' -MMD -MP $(INCS)
CFLAGS   := -std=gnu11 -O2 -g $(WARN) -fno-strict-aliasing -D_FORTIFY_SOURCE=2
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSANFLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
LIBS     := -lssl -lcrypto -lIPSec_MB -lxdp -lbpf -lelf -lz -lpthread

DAEMON_SRCS := $(sort $(shell find daemon -name '*.c' ! -path daemon/main.c))
CTL_SRCS    := $(sort $(wildcard iketcpctl/*.c))
BPF_SRCS    := $(sort $(wildcard bpf/*.bpf.c))
UNIT_SRCS   := $(sort $(wildcard tests/unit/test_*.c))
BPFT_SRCS   := $(sort $(wildcard tests/bpf/test_*.c))
FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRCS  := $(sort $(wildcard tests/bench/bench_*.c))
TESTLIB_SRCS := $(sort $(wildcard tests/lib/*.c))

BPF_OBJS  := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS     := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/skel/%.skel.h)
REL_OBJS  := $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS  := $(DAEMON_SRCS:%.c=$(BUILD)/san/%.o) $(TESTLIB_SRCS:%.c=$(BUILD)/san/%.o)
FUZ_OBJS  := $(DAEMON_SRCS:%.c=$(BUILD)/fuzzobj/%.o)
TSAN_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/tsan/%.o) $(BUILD)/tsan/daemon/main.o
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BPFT_BINS := $(BPFT_SRCS:tests/bpf/%.c=$(BUILD)/tests/bpf_%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: all test test-run unit bpf-test fuzz-replay netns fuzz bench demo install clean deps vmlinux
all: $(BUILD)/iketcpd $(BUILD)/iketcpctl $(BPF_OBJS)

# ---- BPF: .bpf.c -> .bpf.o -> .skel.h -------------------------------------
vmlinux.h:
	$(call msg,GEN,$@)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@
vmlinux: ; $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c vmlinux.h | $(BUILD)/bpf
	$(call msg,BPF,$@)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -MMD -MP \
		-I. -Ibpf -Wall -Werror -c $< -o $@

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o | $(BUILD)/skel
	$(call msg,SKEL,$@)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# ---- userspace, three flavours: release, sanitized (tests), libFuzzer ------
$(BUILD)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/san/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC-SAN,$@)$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) $(SANFLAGS) -DIKETCP_TEST -c $< -o $@
$(BUILD)/tsan/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC-TSAN,$@)$(CC) $(CPPFLAGS) -std=gnu11 $(WARN) $(TSANFLAGS) -DIKETCP_TEST -c $< -o $@
$(BUILD)/fuzzobj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC-FUZZ,$@)$(CLANG) $(CPPFLAGS) -std=gnu11 $(WARN) -Wno-unused-command-line-argument \
		-O1 -g -fsanitize=fuzzer-no-link,address,undefined -DIKETCP_FUZZ -c $< -o $@

$(BUILD)/libiketcp.a: $(REL_OBJS)
	$(call msg,AR,$@)rm -f $@ && ar rcs $@ $^
$(BUILD)/libiketcp-san.a: $(SAN_OBJS)
	$(call msg,AR,$@)rm -f $@ && ar rcs $@ $^
$(BUILD)/libiketcp-fuzz.a: $(FUZ_OBJS)
	$(call msg,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/iketcpd: $(BUILD)/obj/daemon/main.o $(BUILD)/libiketcp.a
	$(call msg,LD,$@)$(CC) -o $@ $^ $(LIBS)
# The daemon under ASan+UBSan: netns tests run it, so leaks and UB at the system level fail them too.
$(BUILD)/iketcpd-san: $(BUILD)/san/daemon/main.o $(BUILD)/libiketcp-san.a
	$(call msg,LD,$@)$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)
# The daemon under ThreadSanitizer: the dataplane thread's test (tests/netns/test_dataplane_thread.sh) runs it.
$(BUILD)/iketcpd-tsan: $(TSAN_OBJS)
	$(call msg,LD,$@)$(CC) $(TSANFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/iketcpctl: $(CTL_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/libiketcp.a
	$(call msg,LD,$@)$(CC) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_%: $(BUILD)/san/tests/unit/test_%.o $(BUILD)/libiketcp-san.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) $(SANFLAGS) -o $@ $^ -lcmocka $(LIBS)
$(BUILD)/tests/bpf_test_%: $(BUILD)/san/tests/bpf/test_%.o $(BUILD)/libiketcp-san.a $(BPF_OBJS)
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) $(SANFLAGS) -o $@ $(filter %.o %.a,$(filter-out $(BPF_OBJS),$^)) -lcmocka $(LIBS)
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzzobj/tests/fuzz/fuzz_%.o $(BUILD)/libiketcp-fuzz.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

$(BUILD)/bench/bench_%: $(BUILD)/obj/tests/bench/bench_%.o $(BUILD)/libiketcp.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(LIBS)
# bench_tunnel.sh's floor: a TUN relay without ESP (not a benchmark of its own)
$(BUILD)/bench/tun_relay: $(BUILD)/obj/tests/bench/tun_relay.o $(BUILD)/libiketcp.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)$(CC) -o $@ $^ $(LIBS)

$(BUILD)/bpf $(BUILD)/skel:
	@mkdir -p $@

# ---- tests ------------------------------------------------------------------
test:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory test-run

test-run: all unit bpf-test fuzz-replay netns

unit: $(UNIT_BINS)
	$(Q)scripts/run-tests.sh unit $(UNIT_BINS)

bpf-test: $(BPFT_BINS) $(BPF_OBJS)
	$(Q)scripts/run-tests.sh bpf $(BPFT_BINS)

fuzz-replay: $(FUZZ_BINS)
	$(Q)scripts/run-fuzz.sh replay $(FUZZ_BINS)

netns: all $(BUILD)/iketcpd-san $(BUILD)/iketcpd-tsan
	$(Q)tests/netns/run.sh

fuzz: $(FUZZ_BINS)
	$(Q)scripts/run-fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_BINS)

bench:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS) $(BUILD)/bench/tun_relay
	$(Q)scripts/bench.sh $(BENCH_BINS)

demo:
	$(Q)scripts/deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

deps:
	$(Q)scripts/deps.sh

install: all
	install -D -m 0755 $(BUILD)/iketcpd $(DESTDIR)$(PREFIX)/sbin/iketcpd
	install -D -m 0755 $(BUILD)/iketcpctl $(DESTDIR)$(PREFIX)/bin/iketcpctl
	for o in $(BPF_OBJS); do install -D -m 0644 $$o $(DESTDIR)$(PREFIX)/lib/iketcp/bpf/$$(basename $$o); done
	install -D -m 0644 scripts/iketcpd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/iketcpd.service
	sed -i 's|@PREFIX@|$(PREFIX)|g' $(DESTDIR)$(PREFIX)/lib/systemd/system/iketcpd.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/iketcp/README.md
	@# Wireshark loads Lua plugins from its own global folder, whatever PREFIX is.
	plugdir=$$(tshark -G folders 2>/dev/null | sed -n 's/^Global Lua Plugins:[[:space:]]*//p'); \
	install -D -m 0644 tools/wireshark/iketcp.lua $(DESTDIR)$${plugdir:-/usr/lib/x86_64-linux-gnu/wireshark/plugins}/iketcp.lua

clean:
	rm -rf $(BUILD)

# Dependency files only from our object folders (build/ also holds extracted peers, whose pam.d is a folder).
-include $(shell find $(BUILD)/obj $(BUILD)/san $(BUILD)/tsan $(BUILD)/fuzzobj $(BUILD)/bpf -name '*.d' -type f 2>/dev/null)
