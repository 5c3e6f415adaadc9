# moat -- a minimal, hardened mail relay.  See README.md.
#
#   make          build/moat: static, musl, BearSSL + LMDB from Debian sources
#   make run      serve the demo config on 127.0.0.1:2525
#   make test     everything: unit (musl and ASan/UBSan), golden, sessions
#   make fuzz     run each libFuzzer target for FUZZ_SECONDS
#   make bench    moat against Postfix and OpenSMTPD (QUICK=1: a short run)
#   make image    build/image/: the appliance disk (raw, qcow2), the OCI archive
#   make clean    remove build/ except the cached dependencies

BUILD    := build
DEPS     := $(BUILD)/deps
# The shipped binary: musl, static.
CC       := musl-gcc
# The sanitizer build of the same code: glibc, Debian's liblmdb/libbearssl.
ASAN_CC  := gcc
FUZZ_CC  := clang
FUZZ_SECONDS ?= 60

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
POLICY := policy/cmd.c \
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
          policy/retry.c \
          policy/route.c \
          policy/dsn.c \
          policy/ctl.c \
          policy/idna.c \
          policy/edge.c \
          policy/dnsbl.c \
          policy/kv.c
QUEUE  := queue/store.c \
          queue/envelope.c \
          queue/usage.c
MTA    := mta/log.c \
          mta/ev.c \
          mta/smtpd.c \
          mta/smtpc.c \
          mta/dns.c \
          mta/dnsbl.c \
          mta/client.c \
          mta/deliver.c \
          mta/control.c \
          mta/server.c \
          mta/qwire.c \
          mta/rq.c \
          mta/qrole.c \
          mta/plink.c \
          mta/roles.c \
          mta/drole.c \
          mta/super.c \
          mta/connlimit.c \
          mta/queuecmd.c \
          mta/tls.c \
          mta/keyrole.c \
          mta/tables.c \
          mta/passwd.c \
          mta/relaytest.c \
          mta/config.c \
          mta/listen.c \
          mta/httpd.c \
          mta/ops.c \
          mta/opscmd.c \
          mta/netcfg.c \
          mta/initdev.c \
          mta/init.c \
          mta/sandbox.c
MAIN   := mta/main.c
UNIT   := $(sort $(wildcard tests/unit/test_*.c))
FUZZ   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
HEADERS := $(wildcard policy/*.h queue/*.h mta/*.h tests/unit/*.h)

LIBSRC   := $(POLICY) $(QUEUE) $(MTA)
MUSL_OBJ := $(LIBSRC:%.c=$(BUILD)/musl/%.o)
ASAN_OBJ := $(LIBSRC:%.c=$(BUILD)/asan/%.o)
UNIT_MUSL := $(UNIT:tests/unit/%.c=$(BUILD)/musl/unit/%)
UNIT_ASAN := $(UNIT:tests/unit/%.c=$(BUILD)/asan/unit/%)
FUZZ_BIN := $(FUZZ:tests/fuzz/%.c=$(BUILD)/fuzz/%)
DEPS_STAMP := $(DEPS)/lib/liblmdb.a $(DEPS)/lib/libbearssl.a

.PHONY: all run test test-run unit fuzz fuzz-build bench clean layout-check tools image
all: $(BUILD)/moat

$(DEPS_STAMP) &:
	BUILD=$(BUILD) sh .ci/deps.sh libs

tools:
	@BUILD=$(BUILD) sh .ci/deps.sh tools

$(BUILD)/musl/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c $(HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_FLAGS) -c $< -o $@

$(BUILD)/moat: $(BUILD)/musl/$(MAIN:.c=.o) $(MUSL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/moat-asan: $(BUILD)/asan/$(MAIN:.c=.o) $(ASAN_OBJ)
	$(ASAN_CC) -fsanitize=address,undefined -o $@ $^ $(ASAN_LIBS)

$(BUILD)/musl/unit/%: tests/unit/%.c $(MUSL_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(MUSL_OBJ) $(LDLIBS)

$(BUILD)/asan/unit/%: tests/unit/%.c $(ASAN_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ASAN_FLAGS) -o $@ $< $(ASAN_OBJ) $(ASAN_LIBS)

# libFuzzer targets: clang, glibc, Debian's liblmdb/libbearssl.
# The library is compiled once (instrumented, not linked with the fuzzer's
# main); each target links against those objects.
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -I. $(SYS_BEARSSL) -g -O1
FUZZ_OBJ := $(LIBSRC:%.c=$(BUILD)/fuzzobj/%.o)
.SECONDARY: $(FUZZ_OBJ)
$(BUILD)/fuzzobj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined \
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

# policy/ does no I/O and only queue/ may include lmdb.h.
layout-check:
	@! grep -nE '#include <(unistd|fcntl|time|sys/socket|sys/stat|netinet/[a-z]+|lmdb)\.h>' policy/*.[ch] \
		|| { echo "layout: policy/ must not do I/O"; exit 1; }
	@! grep -nE '\b(fopen|fprintf|printf|puts|fwrite|time|clock_gettime)\(' policy/*.c \
		|| { echo "layout: policy/ must not do I/O"; exit 1; }
	@! grep -ln 'lmdb\.h' mta/* policy/* tests/unit/*.c \
		|| { echo "layout: only queue/ includes lmdb.h"; exit 1; }
	@test -z "$$(ls -A | grep -vxE '\..*|mta|queue|policy|image|tests|docs|build|Makefile|README\.md')" \
		|| { echo "layout: unexpected top-level entries"; exit 1; }

unit: $(UNIT_MUSL) $(UNIT_ASAN)

# The appliance (image/build.sh): Debian's kernel, moat as /init, no mounts.
# Rebuilt only when the binary or the builder's inputs change.
IMAGE_IN := image/build.sh image/oci.py image/modules image/cmdline \
            image/mke2fs.conf image/moat.conf.example
image: $(BUILD)/image/moat.img
$(BUILD)/image/moat.img: $(BUILD)/moat $(IMAGE_IN) | tools
	BUILD=$(BUILD) sh image/build.sh

run: $(BUILD)/moat
	@sh tests/demo.sh $(BUILD)

# The packages first (one apt at a time), then the builds on every core.
test: tools
	@$(MAKE) --no-print-directory -j$$(nproc) test-run

test-run: $(BUILD)/moat $(BUILD)/moat-asan unit fuzz-build layout-check
	@BUILD=$(BUILD) bash tests/run.sh

# Not a test: speed figures, printed and kept in build/bench/results.txt.
bench: $(BUILD)/moat
	@BUILD=$(BUILD) sh tests/bench/install.sh
	@/usr/bin/python3 tests/bench/bench.py --build $(BUILD) $(if $(QUICK),--quick)

clean:
	rm -rf $(BUILD)/musl $(BUILD)/asan $(BUILD)/fuzz $(BUILD)/fuzzobj $(BUILD)/moat $(BUILD)/moat-asan $(BUILD)/t
