# p4p — one non-recursive GNU Makefile.
#
#   make            build build/p4p (optimised, with debug info)
#   make test       every test: unit tests (cmocka) and command-line tests
#   make run        run scenarios/default.yaml, write results/out/default.sqlite and a PNG plot
#   make bench      print the benchmark figures (bench/run.sh lists them)
#   make bench-check  fail if protocol cost or instruction counts regressed (bench/baseline.txt)
#   make asan       AddressSanitizer + UBSan build, then every test under it
#   make install    PREFIX=/usr/local DESTDIR=  (uninstall likewise)
#   make format     clang-format every C file; make check-format fails on a difference
#
# Every target that builds first runs tools/deps.sh (below, before anything else is read),
# which installs missing Debian packages when run as root and otherwise prints the command to
# run and stops.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc

NO_DEPS_GOALS := clean format check-format uninstall deps
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifndef P4P_DEPS_CHECKED
DEPS_STATUS := $(shell sh tools/deps.sh >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error missing dependencies: see the message above)
endif
export P4P_DEPS_CHECKED := 1
endif
endif

PKGS := libsodium igraph sqlite3 yaml-0.1
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

# Quiet by default: one line per file; `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
else
Q = @echo "  $(if $(filter %.o,$@),CC,$(if $(filter %.a,$@),AR,LD))  $@";
endif

WARN := -Wall -Wextra -Wshadow -Werror
OPT ?= -O2 -g
SAN :=
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) $(OPT) $(SAN) \
	-Iengine/include -Iengine -Istorage -Isim -Iresults -Icli -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(SAN) $(PKG_LIBS) -lm $(LDFLAGS)

ENGINE_SRC := $(sort $(wildcard engine/*.c))
SIM_SRC := $(sort $(wildcard sim/*.c) $(wildcard storage/*.c) $(wildcard results/*.c))
CLI_SRC := $(sort $(filter-out cli/main.c,$(wildcard cli/*.c)))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB := $(BUILD)/libp4p.a
BIN := $(BUILD)/p4p
TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
GEN := $(BUILD)/gen/schema_sql.h $(BUILD)/gen/plot_gp.h $(BUILD)/gen/version.h

.SECONDARY:
.PHONY: all deps test run bench bench-check bench-baseline asan install uninstall clean format check-format FORCE
all: $(BIN)

deps:
	@sh tools/deps.sh

# The library holds everything but main(): engine, simulator, results, command bodies.
$(LIB): $(call obj,$(ENGINE_SRC) $(SIM_SRC) $(CLI_SRC))
	@mkdir -p $(@D)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(call obj,cli/main.c) $(LIB)
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(LIB)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS)

$(BUILD)/bench/%: $(call obj,bench/%.c) $(LIB)
	@mkdir -p $(@D)
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

# Generated headers must exist first; which object needs which is then known from the
# compiler's dependency files, so a new commit recompiles only what includes version.h.
$(BUILD)/obj/%.o: %.c | $(GEN)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

# Text files compiled in as C strings, so the binary needs nothing from the source tree.
$(BUILD)/gen/%_sql.h: results/%.sql tools/embed.sh
	@mkdir -p $(@D)
	sh tools/embed.sh $< $*_sql > $@
$(BUILD)/gen/%_gp.h: results/%.gp tools/embed.sh
	@mkdir -p $(@D)
	sh tools/embed.sh $< $*_gp > $@

# Rewritten only when the version or commit changes, so builds stay incremental.
$(BUILD)/gen/version.h: FORCE
	@mkdir -p $(@D)
	@c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 d=$$(git diff --quiet HEAD 2>/dev/null || echo -dirty); \
	 printf '#define P4P_GIT_COMMIT "%s%s"\n' "$$c" "$$d" > $@.tmp; \
	 cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

test: $(BIN) $(TESTS)
	@BUILD=$(BUILD) sh tests/run.sh

run: $(BIN)
	@mkdir -p results/out
	@$(BIN) run scenarios/default.yaml --out results/out/default.sqlite
	@$(BIN) plot results/out/default.sqlite --out results/out/default.png

bench: $(BIN) $(BENCHES)
	@BUILD=$(BUILD) sh bench/run.sh

# The regression gate: counts noise cannot move, against bench/baseline.txt.
bench-check: $(BIN)
	@BUILD=$(BUILD) sh bench/check.sh
bench-baseline: $(BIN)
	@BUILD=$(BUILD) sh bench/check.sh --update

# Sanitizer build in its own tree; the same tests run under it.
asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" test

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/p4p \
		$(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/share/p4p/scenarios
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/p4p
	install -m 644 engine/include/p4p/p4p.h $(DESTDIR)$(PREFIX)/include/p4p/p4p.h
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libp4p.a
	install -m 644 scenarios/*.yaml $(DESTDIR)$(PREFIX)/share/p4p/scenarios/
	install -m 644 results/schema.sql results/plot.gp $(DESTDIR)$(PREFIX)/share/p4p/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/p4p $(DESTDIR)$(PREFIX)/include/p4p/p4p.h \
		$(DESTDIR)$(PREFIX)/lib/libp4p.a
	rm -rf $(DESTDIR)$(PREFIX)/share/p4p
	-rmdir $(DESTDIR)$(PREFIX)/include/p4p 2>/dev/null

clean:
	rm -rf $(BUILD)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
check-format:
	clang-format --dry-run --Werror $(FORMAT_FILES)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
