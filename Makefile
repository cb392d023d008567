# Avatar Adam: libavatarcore, the nginx module, avatarctl and the web app.
#
#   make            build everything into build/ (and html/dist)
#   make run        start the whole product locally (see README.md)
#   make test       run every test
#   make test-asan  the same suite with AddressSanitizer + UBSan
#   make bench      run the benchmarks under tools/bench

B        ?= build
NGX_SRC  ?= /usr/share/nginx/src
CC       ?= cc
SAN      ?=
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CORE_CFLAGS = $(CFLAGS) $(SAN) -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-fPIC -fvisibility=hidden -DAVC_BUILDING -D_GNU_SOURCE \
	-Ilibavatarcore/include -Ilibavatarcore/src/util \
	$(shell pkg-config --cflags libcurl jansson libpq libcrypto libzip \
		libxml-2.0 pocketsphinx sphinxbase libavformat libavcodec \
		libswresample libavutil 2>/dev/null)
CORE_LIBS = $(shell pkg-config --libs libcurl jansson libpq libcrypto \
		libzip libxml-2.0 pocketsphinx sphinxbase libavformat \
		libavcodec libswresample libavutil 2>/dev/null) \
	-lespeak-ng -lmp3lame -lcrypt -lpthread -lm
SONAME   = libavatarcore.so.0
SOVER    = 0.1.0

CORE_SRCS := $(sort $(wildcard libavatarcore/src/*/*.c))
CORE_OBJS := $(CORE_SRCS:libavatarcore/src/%.c=$(B)/core/%.o)
CORE_HDRS := $(wildcard libavatarcore/include/avatarcore/*.h) \
	$(wildcard libavatarcore/src/*/*.h)
MOD_SRCS  := $(wildcard ngx_avatar_module/*.c ngx_avatar_module/*.h)
CTL_SRCS  := $(wildcard tools/avatarctl/*.c)
UNIT_SRCS := $(wildcard t/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:t/unit/%.c=$(B)/t/%)
MOCK_SRCS := $(wildcard tools/mock/*.c)

.PHONY: all build core module ctl web deps deps-run deps-test run test \
	test-build test-unit test-int test-web test-e2e test-asan bench clean

# Packages first, then a fresh make: the flags above come from pkg-config,
# which a new machine only has after the install.
all: deps
	@$(MAKE) --no-print-directory build

build: core module ctl web

deps:
	@sh tools/deps.sh build
deps-run:
	@sh tools/deps.sh run
deps-test:
	@sh tools/deps.sh test

core: $(B)/$(SONAME) $(B)/libavatarcore.a $(B)/avatarcore.pc

$(B)/core/%.o: libavatarcore/src/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

$(B)/libavatarcore.so.$(SOVER): $(CORE_OBJS)
	$(CC) $(SAN) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined \
		-o $@ $(CORE_OBJS) $(CORE_LIBS)

$(B)/$(SONAME): $(B)/libavatarcore.so.$(SOVER)
	ln -sf libavatarcore.so.$(SOVER) $@
	ln -sf $(SONAME) $(B)/libavatarcore.so

$(B)/libavatarcore.a: $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $(CORE_OBJS)

$(B)/avatarcore.pc: libavatarcore/avatarcore.pc.in
	sed -e 's|@PREFIX@|/usr/local|; s|@VERSION@|$(SOVER)|' $< > $@

# The module is built by nginx's own build system from Debian's nginx-dev,
# configured with Debian's flags and --with-compat so the .so loads in the
# stock /usr/sbin/nginx.  The source tree is copied so that configure never
# writes under /usr/share.
module: $(B)/ngx_http_avatar_module.so

$(B)/nginx/Makefile: config $(NGX_SRC)/conf_flags $(B)/libavatarcore.a
	@mkdir -p $(B)
	rm -rf $(B)/ngx-src && cp -r $(NGX_SRC) $(B)/ngx-src
	cd $(B)/ngx-src && AVC_CORE_LIB=$(CURDIR)/$(B)/libavatarcore.a \
		bash -c '. ./conf_flags && \
		./configure "$${NGX_CONF_FLAGS[@]}" --with-compat \
		--add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(B)/nginx \
		--with-cc-opt="$(SAN) -g -O2 -Wno-unused-parameter" \
		--with-ld-opt="$(SAN)"' > $(CURDIR)/$(B)/configure.log 2>&1 \
		|| { tail -20 $(CURDIR)/$(B)/configure.log; exit 1; }

$(B)/ngx_http_avatar_module.so: $(B)/nginx/Makefile $(MOD_SRCS) \
		$(B)/libavatarcore.a
	$(MAKE) -f $(CURDIR)/$(B)/nginx/Makefile -C $(B)/ngx-src modules
	cp $(B)/nginx/ngx_http_avatar_module.so $@

ctl: $(B)/avatarctl

$(B)/avatarctl: $(CTL_SRCS) $(B)/$(SONAME) $(CORE_HDRS)
	$(CC) $(CORE_CFLAGS) -o $@ $(CTL_SRCS) -L$(B) -lavatarcore \
		-Wl,-rpath,'$$ORIGIN' $(CORE_LIBS)

# The web app (html/): npm ci from the committed lockfile, then vite.
web: html/dist/index.html

html/node_modules/.package-lock.json: html/package-lock.json
	cd html && npm ci --no-audit --no-fund
	touch $@

html/dist/index.html: html/node_modules/.package-lock.json \
		$(shell find html/src html/index.html html/*.ts html/*.js \
			-newer html/package.json 2>/dev/null)
	cd html && npm run build

# Tests.  Unit tests link the static library so they can reach internals.
$(B)/t/%: t/unit/%.c t/unit/tap.h t/unit/pg.h t/unit/mock.h $(B)/libavatarcore.a
	@mkdir -p $(B)/t
	$(CC) $(CORE_CFLAGS) -It/unit -o $@ $< $(B)/libavatarcore.a \
		$(CORE_LIBS)

$(B)/mock/%: tools/mock/%.c $(B)/libavatarcore.a
	@mkdir -p $(B)/mock
	$(CC) $(CORE_CFLAGS) -o $@ $< $(B)/libavatarcore.a $(CORE_LIBS)

test: deps-test
	@$(MAKE) --no-print-directory test-build
	@$(MAKE) --no-print-directory test-unit test-int test-web test-e2e

test-build: build $(UNIT_BINS)

test-unit: $(UNIT_BINS)
	prove --failures --exec '' $(UNIT_BINS)

test-int:
	AVC_BUILD=$(CURDIR)/$(B) prove --failures -I t/lib t/*.t

test-web:
	cd html && npx vitest run

# The end-to-end walk in Debian's Chromium against a private instance
# started like `make run` (screenshots in t/e2e/out/).
test-e2e:
	AVC_BUILD=$(CURDIR)/$(B) node t/e2e/run.mjs

test-asan:
	AVC_SAN=1 $(MAKE) B=build-asan OPT=-O1 \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" test

bench: deps-test
	@$(MAKE) --no-print-directory build
	sh tools/bench/run

run: deps-run
	@$(MAKE) --no-print-directory build
	sh tools/run.sh

clean:
	rm -rf build build-asan html/dist
