# vhdkit - non-recursive GNU make.  `make`, `make check`, `make demo`,
# `make deps`, `make SANITIZE=1 check`, `make fuzz`, `make crash-test`, `make bench`,
# `make install PREFIX=/usr/local DESTDIR=`.
VERSION  := 0.1.0
PREFIX   ?= /usr/local
CC       ?= cc
B        := build
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
            -fvisibility=hidden -Iinclude -MMD -MP -pthread
LDLIBS   := -pthread -luuid $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c)
CLI_LIBS := $(LDLIBS) $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
CFLAGS   += $(shell pkg-config --cflags json-c 2>/dev/null)
CFLAGS   += $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)

ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# The layers (README "Source layout"): lib/ is the library; common/ what the
# programs share; cli/ the vhd subcommands, gc/ the daemon, vhdutil/ blktap's
# personality.  lib/internal.h is on the include path of lib/, vhdutil/,
# fuzz/ and the unit tests only, so a cli/ or gc/ file that reaches for the
# library's internals does not build.
LIB_SRC  := $(wildcard lib/*.c)
PROG_SRC := $(wildcard common/*.c cli/*.c gc/*.c vhdutil/*.c)
# nbdkit-vhd-plugin.so: server/ and the one common/ piece it needs, PIC,
# linked with the library's PIC objects; only plugin_init is exported
PLUGIN_SRC := $(wildcard server/*.c) common/ctlsock.c
PLUGIN_OBJ := $(PLUGIN_SRC:%.c=$(B)/pic/%.o)
NBDKIT_PLUGINDIR ?= $(shell nbdkit --dump-config 2>/dev/null | sed -n 's/^plugindir=//p')
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
PIC_OBJ  := $(LIB_SRC:%.c=$(B)/pic/%.o)
PROG_OBJ := $(PROG_SRC:%.c=$(B)/%.o)
$(B)/lib/%.o $(B)/pic/lib/%.o $(B)/vhdutil/%.o: CFLAGS += -Ilib
$(B)/vhdutil/%.o: CFLAGS += -Icommon
$(B)/common/%.o: CFLAGS += -Icommon
$(B)/cli/%.o: CFLAGS += -Icommon -Icli
$(B)/gc/%.o: CFLAGS += -Icommon -Igc
$(B)/pic/server/%.o $(B)/pic/common/%.o: CFLAGS += -Icommon -Iserver -DVHDKIT_VERSION='"$(VERSION)"'
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/tests/%)
# LD_PRELOAD fault injectors: never sanitized (they wrap libc for any binary).
PRELOAD_SRC := $(wildcard tests/preload/*.c)
PRELOAD_SO  := $(PRELOAD_SRC:tests/preload/%.c=$(B)/tests/%.so)

all: $(B)/vhd $(B)/vhd-util $(B)/libvhdkit.so $(B)/libvhdkit.a $(B)/vhdkit.pc \
     $(B)/nbdkit-vhd-plugin.so

# vhd-util: blktap's command line, chosen by the name the binary runs as.
$(B)/vhd-util: $(B)/vhd
	ln -sf vhd $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(B)/libvhdkit.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libvhdkit.so: $(PIC_OBJ) lib/vhdkit.map
	$(CC) -shared -Wl,-soname,libvhdkit.so.0 -Wl,--version-script=lib/vhdkit.map \
	    $(LDFLAGS) -o $@ $(PIC_OBJ) $(LDLIBS)

$(B)/nbdkit-vhd-plugin.so: $(PLUGIN_OBJ) $(PIC_OBJ) server/plugin.map
	$(CC) -shared -Wl,--version-script=server/plugin.map $(LDFLAGS) -o $@ \
	    $(PLUGIN_OBJ) $(PIC_OBJ) $(LDLIBS)

# the web view's files (gc/web/) as C arrays, built into vhd (gc/web.c)
WEB_ASSETS := gc/web/index.html gc/web/app.js gc/web/style.css
$(B)/gc/web-assets.c: $(WEB_ASSETS) gc/web/embed.sh
	@mkdir -p $(dir $@)
	sh gc/web/embed.sh $@ $(WEB_ASSETS)
$(B)/gc/web-assets.o: $(B)/gc/web-assets.c
	$(CC) $(CFLAGS) -Icommon -Igc -c $< -o $@
PROG_OBJ += $(B)/gc/web-assets.o

$(B)/vhd: $(PROG_OBJ) $(B)/libvhdkit.a
	$(CC) $(LDFLAGS) -o $@ $(PROG_OBJ) $(B)/libvhdkit.a $(CLI_LIBS) -lm

# unit tests see the internals, and link the programs' pieces: an archive
# of every program object (common/, gc/, ...) but the one with main(), from
# which each test gets the objects it uses (gc/planner.o for test-gc-planner)
PIECE_OBJ := $(filter-out $(B)/cli/main.o,$(PROG_OBJ))
$(B)/libpieces.a: $(PIECE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/tests/%: tests/unit/%.c $(B)/libpieces.a $(B)/libvhdkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilib -Icommon -Igc $(LDFLAGS) -o $@ $< $(B)/libpieces.a $(B)/libvhdkit.a \
	    $(LDLIBS) -lm

$(B)/tests/%: tests/tools/%.c $(B)/libvhdkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libvhdkit.a $(LDLIBS)

# benchmark generators (bench/tools/*.c -> $(B)/bench/NAME)
BENCH_SRC := $(wildcard bench/tools/*.c)
BENCH_BIN := $(BENCH_SRC:bench/tools/%.c=$(B)/bench/%)
$(B)/bench/%: bench/tools/%.c $(B)/libvhdkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilib $(LDFLAGS) -o $@ $< $(B)/libvhdkit.a $(LDLIBS)

# fuzzing: two libFuzzer targets (clang, their own sanitized objects) for
# `make fuzz` (fuzz/run.sh): fuzz-open-check (the library) and fuzz-vhdutil
# (vhd-util's parser, vhdutil/ and common/ built with the fuzz flags too);
# and their replay drivers (normal compiler) that
# tests/test-fuzz-regressions.sh runs saved inputs through
# (-O2: about 15% more inputs per second than -O1, see BENCHMARKS.md)
FUZZ_CC     ?= clang
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -g -O2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
               -Iinclude -Ilib -MMD -MP -pthread -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all \
               $(shell pkg-config --cflags json-c 2>/dev/null)
FUZZ_OBJ    := $(LIB_SRC:%.c=$(B)/fuzz/%.o) $(B)/fuzz/fuzz/fuzz-util.o
VU_SRC      := $(wildcard vhdutil/*.c common/*.c)
FUZZ_VU_OBJ := $(VU_SRC:%.c=$(B)/fuzz/%.o)
$(B)/fuzz/vhdutil/%.o $(B)/fuzz/common/%.o: FUZZ_CFLAGS += -Icommon
$(B)/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(B)/fuzz/fuzz-open-check: fuzz/fuzz-open-check.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)
$(B)/fuzz/fuzz-vhdutil: fuzz/fuzz-vhdutil.c $(FUZZ_VU_OBJ) $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ivhdutil -Icommon -fsanitize=fuzzer -o $@ $< $(FUZZ_VU_OBJ) \
	    $(FUZZ_OBJ) $(LDLIBS) -lm
$(B)/tests/fuzz-replay: fuzz/fuzz-open-check.c fuzz/fuzz-util.c $(B)/libvhdkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilib -DFUZZ_REPLAY $(LDFLAGS) -o $@ fuzz/fuzz-open-check.c \
	    fuzz/fuzz-util.c $(B)/libvhdkit.a $(LDLIBS)
$(B)/tests/fuzz-vhdutil-replay: fuzz/fuzz-vhdutil.c fuzz/fuzz-util.c $(VU_SRC:%.c=$(B)/%.o) \
                                $(B)/libvhdkit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ilib -Ivhdutil -Icommon -DFUZZ_REPLAY $(LDFLAGS) -o $@ fuzz/fuzz-vhdutil.c \
	    fuzz/fuzz-util.c $(VU_SRC:%.c=$(B)/%.o) $(B)/libvhdkit.a $(LDLIBS) -lm
tests-bin: $(B)/tests/fuzz-replay $(B)/tests/fuzz-vhdutil-replay
fuzz-bin: $(B)/fuzz/fuzz-open-check $(B)/fuzz/fuzz-vhdutil $(B)/tests/fuzz-replay \
          $(B)/tests/fuzz-vhdutil-replay

$(B)/tests/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -fPIC -shared -o $@ $< -ldl

$(B)/vhdkit.pc: lib/vhdkit.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# the man page (scdoc, from install-deps.sh); not part of `all` so that
# building needs nothing beyond the compiler and the -dev packages
$(B)/vhd.1: man/vhd.1.scd
	scdoc < $< > $@

tests-bin: all $(UNIT_BIN) $(TOOL_BIN) $(PRELOAD_SO)

# Packages first, then a fresh make (so pkg-config sees them), then the
# script, with the shell its #! line names (tests/test-make-script-shells.sh).
deps:
	@sh install-deps.sh
build-deps:
	@sh install-deps.sh build

check: deps
	@$(MAKE) -s --no-print-directory tests-bin $(B)/vhd.1
	@B=$(B) sh tests/run.sh

demo: build-deps
	@$(MAKE) -s --no-print-directory all $(B)/tests/vhd-io
	@B=$(B) sh contrib/demo.sh

fuzz: deps
	@B=$(B) sh fuzz/run.sh

crash-test: deps
	@$(MAKE) -s --no-print-directory tests-bin
	@B=$(B) CRASH_ROUNDS=$${CRASH_ROUNDS:-60} bash tests/crash-loop.sh
	@B=$(B) CRASH_ROUNDS=$${GC_CRASH_ROUNDS:-40} bash tests/gc-crash-loop.sh
	@B=$(B) GC_CRASH_SHAPE=onepass CRASH_ROUNDS=$${ONEPASS_CRASH_ROUNDS:-40} bash tests/gc-crash-loop.sh
	@B=$(B) SERVE_CRASH_ROUNDS=$${SERVE_CRASH_ROUNDS:-40} bash tests/test-serve-crash.sh
	@B=$(B) LIVE_CRASH_ROUNDS=$${LIVE_CRASH_ROUNDS:-40} bash tests/test-live-crash.sh

bench: deps
	@$(MAKE) -s --no-print-directory tests-bin $(BENCH_BIN)
	@B=$(B) sh bench/run.sh

install: all $(B)/vhd.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/vhd $(DESTDIR)$(PREFIX)/bin/vhd
	ln -sf vhd $(DESTDIR)$(PREFIX)/bin/vhd-util
	install -m 644 $(B)/libvhdkit.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libvhdkit.so $(DESTDIR)$(PREFIX)/lib/libvhdkit.so.0
	ln -sf libvhdkit.so.0 $(DESTDIR)$(PREFIX)/lib/libvhdkit.so
	install -m 644 include/vhdkit.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/vhdkit.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 $(B)/vhd.1 $(DESTDIR)$(PREFIX)/share/man/man1/vhd.1
	install -d $(DESTDIR)$(NBDKIT_PLUGINDIR)
	install -m 755 $(B)/nbdkit-vhd-plugin.so $(DESTDIR)$(NBDKIT_PLUGINDIR)/

clean:
	rm -rf $(B)

.PHONY: all tests-bin deps build-deps check demo fuzz fuzz-bin crash-test bench install clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)
