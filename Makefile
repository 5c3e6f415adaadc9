# moat -- a minimal, hardened mail relay.  See README.md.
#
#   make          build/moat: static, musl, BearSSL + LMDB from Debian sources
#   make run      serve the demo config on 127.0.0.1:PORT (2525)
#   make test     everything: unit (musl and ASan/UBSan), golden, sessions, docs
#   make fuzz     run each libFuzzer target for FUZZ_SECONDS
#   make bench    moat against Postfix and OpenSMTPD (QUICK=1: a short run;
#                 SECTION=inbound or outbound: that half only)
#   make image    build/image/: the appliance disk (raw, qcow2), the OCI archive
#   make install  the binary and its man pages under DESTDIR/PREFIX
#   make tools    every Debian package any target needs (each target installs
#                 its own group: .ci/deps.sh)
#   make clean    remove build/ except the cached dependencies

BUILD    := build
DEPS     := $(BUILD)/deps
# The shipped binary: musl, static.
CC       := musl-gcc
# The sanitizer build of the same code: glibc, Debian's liblmdb/libbearssl.
ASAN_CC  := gcc
FUZZ_CC  := clang
FUZZ_SECONDS ?= 60
# make run: the demo's port, on 127.0.0.1 and [::1].
PORT     ?= 2525
# make install: $(DESTDIR)$(PREFIX)/sbin/moat and its man pages.
PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  := $(PREFIX)/sbin
MANDIR   := $(PREFIX)/share/man
MAN      := docs/moat.8 docs/moat.conf.5

WARN     := -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion \
            -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith \
            -Wcast-qual -Wwrite-strings -Wvla -Wformat=2 -Wundef \
            -Wimplicit-fallthrough -Wnull-dereference -Werror=implicit-function-declaration
BASEFLAGS := -std=c11 -D_GNU_SOURCE -I. $(WARN)
CFLAGS   := $(BASEFLAGS) -O2 -g -isystem $(DEPS)/include -fstack-protector-strong -D_FORTIFY_SOURCE=0
LDFLAGS  := -static -L$(DEPS)/lib
LDLIBS   := -llmdb -lbearssl -lpthread
# Debian's libbearssl-dev puts its headers in /usr/include/bearssl.
SYS_BEARSSL := -isystem /usr/include/bearssl
ASAN_FLAGS := $(BASEFLAGS) $(SYS_BEARSSL) -O1 -g -fno-omit-frame-pointer \
            -fsanitize=address,undefined -fno-sanitize-recover=undefined
ASAN_LIBS  := -llmdb -lbearssl -lpthread

# Sources, one per line, by directory (dependency direction: mta -> queue,
# policy; queue -> policy; policy -> nothing).
POLICY := policy/wire.c \
          policy/cmd.c \
          policy/text.c \
          policy/addr.c \
          policy/data.c \
          policy/net.c \
          policy/conf.c \
          policy/rules.c \
          policy/quota.c \
          policy/base64.c \
          policy/pem.c \
          policy/shacrypt.c \
          policy/sasl.c \
          policy/users.c \
          policy/rcptdb.c \
          policy/authfail.c \
          policy/http.c \
          policy/metrics.c \
          policy/reply.c \
          policy/dns.c \
          policy/mtasts.c \
          policy/mtasts_fetch.c \
          policy/tlsrpt.c \
          policy/retry.c \
          policy/route.c \
          policy/hosts.c \
          policy/dsn.c \
          policy/dsnparam.c \
          policy/ctl.c \
          policy/idna.c \
          policy/edge.c \
          policy/dnsbl.c \
          policy/kv.c \
          policy/proxy.c \
          policy/spki.c \
          policy/dkim.c \
          policy/modidx.c \
          policy/dhcp.c \
          policy/sntp.c \
          policy/syslog.c \
          policy/ndp.c \
          policy/fslabel.c \
          policy/bootslot.c
QUEUE  := queue/store.c \
          queue/envelope.c \
          queue/ext.c \
          queue/usage.c \
          queue/sts.c \
          queue/tlsrec.c
# mta/ in wings, each above the next (layout-check keeps the direction):
# main -> roles -> smtp, cmd, init -> ops -> net -> queue -> policy.
NET    := mta/net/log.c \
          mta/net/ev.c \
          mta/net/tls.c \
          mta/net/dane.c \
          mta/net/conn.c \
          mta/net/keymsg.c \
          mta/net/key_client.c \
          mta/net/dkim_client.c \
          mta/net/resolver.c \
          mta/net/listen.c \
          mta/net/connlimit.c \
          mta/net/qwire.c \
          mta/net/queue_client.c \
          mta/net/plink.c \
          mta/net/sockaddr.c
OPS    := mta/ops/loaded_config.c \
          mta/ops/dkim_key.c \
          mta/ops/config_files.c \
          mta/ops/control.c \
          mta/ops/httpd.c \
          mta/ops/ops.c
SMTP   := mta/smtp/smtpd.c \
          mta/smtp/smtpc.c \
          mta/smtp/blocklist_lookup.c \
          mta/smtp/sts_fetch.c \
          mta/smtp/sts_policy.c \
          mta/smtp/tls_results.c \
          mta/smtp/tls_report_mail.c \
          mta/smtp/delivery_attempt.c \
          mta/smtp/queue_runner.c \
          mta/smtp/dkim_signer.c \
          mta/smtp/dsn_dkim.c \
          mta/smtp/verify.c
CMD    := mta/cmd/conf_path.c \
          mta/cmd/queue_cmd.c \
          mta/cmd/tls_report_cmd.c \
          mta/cmd/status_cmd.c \
          mta/cmd/passwd.c \
          mta/cmd/relay_test.c \
          mta/cmd/dkim_keygen.c
INIT   := mta/init/rtnetlink.c \
          mta/init/devices.c \
          mta/init/modules.c \
          mta/init/child.c \
          mta/init/seed.c \
          mta/init/slots.c \
          mta/init/upgrade.c \
          mta/init/lease.c \
          mta/init/ntpc.c \
          mta/init/init.c
ROLES  := mta/roles/roles.c \
          mta/roles/sandbox.c \
          mta/roles/supervisor.c \
          mta/roles/smtp_role.c \
          mta/roles/queue_role.c \
          mta/roles/delivery_role.c \
          mta/roles/key_role.c
MTA    := $(NET) $(OPS) $(SMTP) $(CMD) $(INIT) $(ROLES)
MAIN   := mta/main.c
UNIT   := $(sort $(wildcard tests/unit/test_*.c))
FUZZ   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
HEADERS := $(wildcard policy/*.h queue/*.h mta/*/*.h tests/unit/*.h tests/fuzz/*.h)

LIBSRC   := $(POLICY) $(QUEUE) $(MTA)
MUSL_OBJ := $(LIBSRC:%.c=$(BUILD)/musl/%.o)
ASAN_OBJ := $(LIBSRC:%.c=$(BUILD)/asan/%.o)
UNIT_MUSL := $(UNIT:tests/unit/%.c=$(BUILD)/musl/unit/%)
UNIT_ASAN := $(UNIT:tests/unit/%.c=$(BUILD)/asan/unit/%)
FUZZ_BIN := $(FUZZ:tests/fuzz/%.c=$(BUILD)/fuzz/%)
DEPS_STAMP := $(DEPS)/lib/liblmdb.a $(DEPS)/lib/libbearssl.a

.PHONY: all run test test-run unit fuzz fuzz-build bench clean layout-check man-check tools \
        run-tools test-tools image-tools image install
all: $(BUILD)/moat

$(DEPS_STAMP) &:
	BUILD=$(BUILD) sh .ci/deps.sh libs

# Debian packages, by what needs them (.ci/deps.sh says which are in each).
tools:
	@BUILD=$(BUILD) sh .ci/deps.sh tools build run image test
run-tools:
	@BUILD=$(BUILD) sh .ci/deps.sh tools run
image-tools:
	@BUILD=$(BUILD) sh .ci/deps.sh tools image
test-tools:
	@BUILD=$(BUILD) sh .ci/deps.sh tools test

$(BUILD)/musl/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CC     $<'
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo '  CC-ASAN $<'
	@$(ASAN_CC) $(ASAN_FLAGS) -c $< -o $@

$(BUILD)/moat: $(BUILD)/musl/$(MAIN:.c=.o) $(MUSL_OBJ)
	@echo '  LD     $@'
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/moat-asan: $(BUILD)/asan/$(MAIN:.c=.o) $(ASAN_OBJ)
	@echo '  LD     $@'
	@$(ASAN_CC) -fsanitize=address,undefined -o $@ $^ $(ASAN_LIBS)

$(BUILD)/musl/unit/%: tests/unit/%.c $(MUSL_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(MUSL_OBJ) $(LDLIBS)

$(BUILD)/asan/unit/%: tests/unit/%.c $(ASAN_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(ASAN_CC) $(ASAN_FLAGS) -o $@ $< $(ASAN_OBJ) $(ASAN_LIBS)

# libFuzzer targets: clang, glibc, Debian's liblmdb/libbearssl.
# The library is compiled once (instrumented, not linked with the fuzzer's
# main); each target links against those objects.
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -I. $(SYS_BEARSSL) -g -O1
FUZZ_OBJ := $(LIBSRC:%.c=$(BUILD)/fuzzobj/%.o)
.SECONDARY: $(FUZZ_OBJ)
$(BUILD)/fuzzobj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  CC-FUZZ $<'
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FUZZ_OBJ) $(ASAN_LIBS)

fuzz-build: $(FUZZ_BIN)

# Each target for FUZZ_SECONDS, on a copy of its seed corpus.
fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f | sed 's/^fuzz_//'); \
		mkdir -p $(BUILD)/fuzz/corpus/$$n; \
		cp -n tests/fuzz/corpus/$$n/* $(BUILD)/fuzz/corpus/$$n/ 2>/dev/null; \
		echo "== $$f: $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -dict=tests/fuzz/smtp.dict \
			$(BUILD)/fuzz/corpus/$$n || exit 1; done

# policy/ does no I/O, only queue/ may include lmdb.h, and mta/'s wings
# include only downward: a wing's files include their own wing and those
# below it (WINGS_BELOW), never one above or beside.
WINGS_BELOW_net   := net
WINGS_BELOW_ops   := ops net
WINGS_BELOW_smtp  := smtp ops net
WINGS_BELOW_cmd   := cmd ops net
WINGS_BELOW_init  := init ops net
WINGS_BELOW_roles := roles smtp cmd init ops net
layout-check:
	@! grep -nE '#include <(unistd|fcntl|time|sys/socket|sys/stat|netinet/[a-z]+|lmdb)\.h>' policy/*.[ch] \
		|| { echo "layout: policy/ must not do I/O"; exit 1; }
	@! grep -nE '\b(fopen|fprintf|printf|puts|fwrite|time|clock_gettime)\(' policy/*.c \
		|| { echo "layout: policy/ must not do I/O"; exit 1; }
	@! grep -rln 'lmdb\.h' mta policy tests/unit/*.c \
		|| { echo "layout: only queue/ includes lmdb.h"; exit 1; }
	@! grep -nE '#include "mta/' policy/*.[ch] queue/*.[ch] \
		|| { echo "layout: policy/ and queue/ must not include mta/"; exit 1; }
	@for w in net ops smtp cmd init roles; do \
		allowed=$$(case $$w in net) echo "$(WINGS_BELOW_net)";; ops) echo "$(WINGS_BELOW_ops)";; \
			smtp) echo "$(WINGS_BELOW_smtp)";; cmd) echo "$(WINGS_BELOW_cmd)";; \
			init) echo "$(WINGS_BELOW_init)";; roles) echo "$(WINGS_BELOW_roles)";; esac); \
		pat=$$(echo $$allowed | sed 's/ /|/g'); \
		bad=$$(grep -nE '#include "mta/' mta/$$w/*.[ch] | grep -vE "#include \"mta/($$pat)/"); \
		[ -z "$$bad" ] || { echo "layout: mta/$$w/ includes a wing above or beside it:"; echo "$$bad"; exit 1; }; \
	done
	@test -z "$$(ls mta | grep -vxE 'main\.c|net|ops|smtp|cmd|init|roles')" \
		|| { echo "layout: mta/ holds main.c and the wings only"; exit 1; }
	@test -z "$$(ls -A | grep -vxE '\..*|mta|queue|policy|image|tests|docs|build|Makefile|README\.md')" \
		|| { echo "layout: unexpected top-level entries"; exit 1; }

unit: $(UNIT_MUSL) $(UNIT_ASAN)

# The appliance (image/build.sh): Debian's kernel, moat as /init, no mounts.
# Rebuilt only when the binary or the builder's inputs change.
IMAGE_IN := image/build.sh image/rewrap.sh image/slots.sh image/oci.py image/modules image/cmdline \
            image/mke2fs.conf image/moat.conf.example
image: $(BUILD)/image/moat.img
$(BUILD)/image/moat.img: $(BUILD)/moat $(IMAGE_IN) | image-tools
	BUILD=$(BUILD) sh image/build.sh

# Only what building and serving need (and swaks), then the build.
run: run-tools
	@$(MAKE) --no-print-directory $(BUILD)/moat
	@sh tests/demo.sh $(BUILD) $(PORT)

# The man pages: mandoc -Tlint has nothing to say about them.  Their .Xr
# references are looked up among the pages as installed (a manpath of
# their own, indexed by makewhatis); -Wstyle leaves out only the checks
# meant for an operating system's base pages.
MANLINT := $(BUILD)/man-check
man-check:
	@rm -rf $(MANLINT) && mkdir -p $(MANLINT)/man5 $(MANLINT)/man8
	@cp docs/moat.8 $(MANLINT)/man8/ && cp docs/moat.conf.5 $(MANLINT)/man5/ && makewhatis $(MANLINT)
	@out=$$(mandoc -Tlint -Wstyle -M $(MANLINT) $(MAN) 2>&1); \
		[ -z "$$out" ] || { echo "$$out"; exit 1; }; echo "man-check: mandoc -Tlint: clean"

install: $(BUILD)/moat
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 $(BUILD)/moat $(DESTDIR)$(SBINDIR)/moat
	install -m 0644 docs/moat.8 $(DESTDIR)$(MANDIR)/man8/moat.8
	install -m 0644 docs/moat.conf.5 $(DESTDIR)$(MANDIR)/man5/moat.conf.5

# The packages first (one apt at a time), then the builds on every core.
test: test-tools
	@$(MAKE) --no-print-directory -j$$(nproc) test-run

# Test drivers the Python tests run, in both builds (not tests themselves).
DRIVERS := $(BUILD)/musl/tests/dkim-sign $(BUILD)/asan/tests/dkim-sign
$(BUILD)/musl/tests/dkim-sign: tests/dkim/dkim_sign.c $(MUSL_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(MUSL_OBJ) $(LDLIBS)
$(BUILD)/asan/tests/dkim-sign: tests/dkim/dkim_sign.c $(ASAN_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	@echo '  LD     $@'
	@$(ASAN_CC) $(ASAN_FLAGS) -o $@ $< $(ASAN_OBJ) $(ASAN_LIBS)

test-run: $(BUILD)/moat $(BUILD)/moat-asan unit fuzz-build layout-check $(DRIVERS)
	@BUILD=$(BUILD) bash tests/run.sh

# Not a test: speed figures, printed and kept in build/bench/results.txt.
bench: $(BUILD)/moat
	@BUILD=$(BUILD) sh tests/bench/install.sh
	@/usr/bin/python3 tests/bench/bench.py --build $(BUILD) $(if $(QUICK),--quick) \
		$(if $(SECTION),--section $(SECTION))

clean:
	rm -rf $(BUILD)/musl $(BUILD)/asan $(BUILD)/fuzz $(BUILD)/fuzzobj $(BUILD)/moat $(BUILD)/moat-asan $(BUILD)/t $(BUILD)/man-check
