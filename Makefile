# pam-oauth - GNU Makefile (no autotools).
#
#   make                 build the module, the helper and the core library
#   make check           build and run every test; ends with "N passed, N failed"
#   make check SANITIZE=1   the same with AddressSanitizer + UBSan (in build/san)
#   make install DESTDIR=... PREFIX=...     make uninstall
#                        (configuration: SYSCONFDIR, default /etc)
#   make bench           benchmarks (not tests)
#   make demo            an end-to-end demonstration on 127.0.0.1
#   make fuzz            the libFuzzer targets of tests/fuzz/ (clang), in build/fuzz
#   make fuzz-run FUZZ_SECONDS=N   run each target N seconds, print its figures
#   make fuzz-merge      add new coverage (seeds, fuzz-run finds) to the corpus
#
# make check also runs each fuzz target once over its committed corpus:
# built with libFuzzer when $(FUZZ_CC) can (FUZZ=auto, the default), else
# with $(CC) and tests/fuzz/standalone.c; FUZZ=0 skips it.
#
# VALGRIND=0 skips the tests that run the module under valgrind (about
# half a minute of the plain run; CI's partial second run uses it).
#
# WERROR=0 turns warnings back into warnings (default: fatal).

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
# The session-refresh helper: LIBEXECDIR/pam-oauth/session-refresh, setgid
# to SESSION_GROUP (see session-refresh(8)); its rate limit's state under
# RUNSTATEDIR/pam-oauth/refresh.
LIBEXECDIR ?= $(PREFIX)/libexec
RUNSTATEDIR ?= /run
SESSION_GROUP := pam-oauth
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(PREFIX)/share/doc/pam-oauth
# The configuration is read from /etc/pam-oauth whatever PREFIX is, as PAM
# itself (/etc/pam.d, /etc/security) and the modules next to it read /etc:
# the module goes to the system's PAM directory too.  SYSCONFDIR=... to change.
SYSCONFDIR ?= /etc
PKG_CONFIG ?= pkg-config
PAMDIR     ?= $(shell $(PKG_CONFIG) --variable=libdir pam 2>/dev/null || echo /lib)/security
# systemd units: where systemd.pc says for PREFIX=/usr, else under PREFIX
# (systemd also reads /usr/local/lib/systemd/system).
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),$(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/usr/lib/systemd/system),$(PREFIX)/lib/systemd/system)
TMPFILESDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/tmpfiles.d,$(PREFIX)/lib/tmpfiles.d)
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# zsh's site-functions; Debian's zsh reads vendor-completions instead.
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
DESTDIR    ?=

CC       ?= cc
SANITIZE ?= 0
WERROR   ?= 1

ifeq ($(SANITIZE),1)
B := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPTFLAGS := -O1 -g
else
B := .
SANFLAGS :=
OPTFLAGS := -O2 -g -D_FORTIFY_SOURCE=2
endif

DEPS      := libcurl json-c libcrypto pam libqrencode
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS))
JSON_LIBS  := $(shell $(PKG_CONFIG) --libs json-c)
CRYPTO_LIBS:= $(shell $(PKG_CONFIG) --libs libcrypto)
PAM_LIBS   := $(shell $(PKG_CONFIG) --libs pam)
# libargon2 (offline verifiers, common/offline.c) goes into the PAM module
# and the test programs only: oauth-token never links it.
ARGON2_CFLAGS := $(shell $(PKG_CONFIG) --cflags libargon2)
ARGON2_LIBS   := $(shell $(PKG_CONFIG) --libs libargon2)

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes \
        -Wmissing-prototypes -Wwrite-strings -Wvla -Wcast-qual -Wundef \
        -Wnull-dereference -Wimplicit-fallthrough
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS  ?= $(OPTFLAGS)
ALL_CFLAGS = -std=gnu11 -fPIC -fstack-protector-strong -fvisibility=hidden \
             $(WARN) $(SANFLAGS) $(CPPFLAGS) $(CFLAGS) -Icommon $(DEP_CFLAGS) \
             $(ARGON2_CFLAGS) -DPO_VERSION='"$(VERSION)"' -DPO_SYSCONFDIR='"$(SYSCONFDIR)"' \
             -DPO_LIBEXECDIR='"$(LIBEXECDIR)"' -DPO_RUNSTATEDIR='"$(RUNSTATEDIR)"' -MMD -MP
ALL_LDFLAGS = -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS) $(LDFLAGS)

COMMON_SRC := $(wildcard common/*.c)
PAM_SRC    := $(wildcard pam_oauth/*.c)
HELPER_SRC := $(wildcard curl_helper/*.c)
REFRESH_SRC := $(wildcard session_refresh/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/%.o)
PAM_OBJ    := $(PAM_SRC:%.c=$(B)/%.o)
HELPER_OBJ := $(HELPER_SRC:%.c=$(B)/%.o)
REFRESH_OBJ := $(REFRESH_SRC:%.c=$(B)/%.o)

LIBCORE := $(B)/common/libpoauth.a
MODULE  := $(B)/pam_oauth/pam_oauth.so
HELPER  := $(B)/curl_helper/oauth-token
GITHELPER := $(B)/curl_helper/git-credential-oauth-token
DOCKERHELPER := $(B)/curl_helper/docker-credential-oauth-token
REFRESHER := $(B)/session_refresh/session-refresh
UNIT_BIN := $(UNIT_SRC:%.c=$(B)/%)
TOOL_BIN := $(TOOL_SRC:%.c=$(B)/%)

.PHONY: all check check-run unit-tests test-tools install uninstall clean bench demo demo-run deps format \
        fuzz fuzz-run fuzz-merge fuzz-regression
all: $(MODULE) $(HELPER) $(GITHELPER) $(DOCKERHELPER) $(REFRESHER)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCORE): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(MODULE): $(PAM_OBJ) $(LIBCORE) pam_oauth/pam_oauth.map
	$(CC) -shared -o $@ $(PAM_OBJ) $(LIBCORE) $(ALL_LDFLAGS) \
	  -Wl,--version-script=pam_oauth/pam_oauth.map -Wl,-z,defs \
	  $(JSON_LIBS) $(CRYPTO_LIBS) $(ARGON2_LIBS) $(PAM_LIBS) -ldl -lpthread

$(HELPER): $(HELPER_OBJ) $(LIBCORE)
	$(CC) -o $@ $(HELPER_OBJ) $(LIBCORE) $(ALL_LDFLAGS) -pie \
	  $(JSON_LIBS) $(CRYPTO_LIBS) -ldl -lpthread

$(REFRESHER): $(REFRESH_OBJ) $(LIBCORE)
	$(CC) -o $@ $(REFRESH_OBJ) $(LIBCORE) $(ALL_LDFLAGS) -pie \
	  $(JSON_LIBS) $(CRYPTO_LIBS) -ldl -lpthread

$(GITHELPER) $(DOCKERHELPER): $(HELPER)
	ln -sf oauth-token $@

# Unit tests (cmocka) link the core directly.
$(B)/tests/unit/%: tests/unit/%.c $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBCORE) $(ALL_LDFLAGS) \
	  $(shell $(PKG_CONFIG) --libs cmocka) $(JSON_LIBS) $(CRYPTO_LIBS) \
	  $(ARGON2_LIBS) -ldl -lpthread

# Test tools (a PAM loop driver, the month simulator, ...).  po-offline
# compares with yescrypt, through libcrypt.
$(B)/tests/tools/po-offline: TOOL_EXTRA_LIBS := -lcrypt
$(B)/tests/tools/%: tests/tools/%.c $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBCORE) $(ALL_LDFLAGS) \
	  $(JSON_LIBS) $(CRYPTO_LIBS) $(ARGON2_LIBS) $(PAM_LIBS) $(TOOL_EXTRA_LIBS) \
	  -ldl -lpthread

# Allocation failure (tests/failalloc/): the module, the helper and the
# walk driver linked so that every allocation call of the core, pam_oauth,
# the helper, json-c and libcrypto (the last two linked statically for it)
# goes through wrap.c, which fails the Nth (failalloc.h).  Test builds
# only: nothing here is installed.
FA_B      := $(B)/tests/failalloc
FA_WRAP   := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup \
             -Wl,--wrap=asprintf,--wrap=vasprintf,--wrap=__asprintf_chk,--wrap=__vasprintf_chk
FA_JSON_A  = $(shell $(PKG_CONFIG) --variable=libdir json-c)/libjson-c.a
FA_CRYPTO_A = $(shell $(PKG_CONFIG) --variable=libdir libcrypto)/libcrypto.a
FA_BIN    := $(FA_B)/pam_oauth.so $(FA_B)/oauth-token $(FA_B)/pam-failwalk

$(FA_B)/wrap.o: tests/failalloc/wrap.c tests/failalloc/failalloc.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The module leaves __wrap_* to the program that loads it (pam-failwalk).
$(FA_B)/pam_oauth.so: $(PAM_OBJ) $(LIBCORE) pam_oauth/pam_oauth.map
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(PAM_OBJ) $(LIBCORE) $(ALL_LDFLAGS) $(FA_WRAP) \
	  -Wl,--exclude-libs,ALL -Wl,--version-script=pam_oauth/pam_oauth.map \
	  $(FA_JSON_A) $(FA_CRYPTO_A) $(ARGON2_LIBS) $(PAM_LIBS) -ldl -lpthread

$(FA_B)/oauth-token: $(HELPER_OBJ) $(LIBCORE) $(FA_B)/wrap.o
	$(CC) -o $@ $(HELPER_OBJ) $(FA_B)/wrap.o $(LIBCORE) $(ALL_LDFLAGS) -pie \
	  $(FA_WRAP) $(FA_JSON_A) -ldl -lpthread

$(FA_B)/pam-failwalk: tests/failalloc/pam-failwalk.c $(FA_B)/wrap.o
	$(CC) $(ALL_CFLAGS) -Itests/tools -Itests/failalloc -o $@ $< $(FA_B)/wrap.o \
	  $(ALL_LDFLAGS) $(FA_WRAP) -rdynamic $(PAM_LIBS)

unit-tests: $(UNIT_BIN)
test-tools: $(TOOL_BIN) $(FA_BIN)

# ------------------------------------------------------------------ fuzzing
# tests/fuzz/fuzz_NAME.c: one libFuzzer target each (see tests/fuzz/fuzz.h).
# make fuzz builds them with clang -fsanitize=fuzzer,address,undefined into
# build/fuzz, over the core compiled the same way (-fsanitize=fuzzer-no-link
# for coverage).  fuzz_git includes curl_helper/git.c and links the rest of
# the helper, its main renamed; fuzz_watch includes common/etcd.c (whose
# own object the archive then does not add).
FUZZ_CC      ?= clang
FUZZ         ?= auto
FUZZ_SECONDS ?= 60
FUZZ_B       := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=gnu11 -fPIC -O1 -g $(FUZZ_SAN) $(WARN) $(CPPFLAGS) -Icommon -Itests/fuzz \
                $(DEP_CFLAGS) -DPO_VERSION='"$(VERSION)"' -DPO_SYSCONFDIR='"$(SYSCONFDIR)"' -MMD -MP
FUZZ_LIBS     = $(JSON_LIBS) $(CRYPTO_LIBS) -ldl -lpthread
FUZZ_NAMES   := $(notdir $(FUZZ_SRC:.c=))
FUZZ_HELPER  := $(filter-out main git,$(notdir $(HELPER_SRC:.c=)))
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_B)/%)
FUZZ_CORE    := $(COMMON_SRC:%.c=$(FUZZ_B)/%.o)
FUZZ_HOBJ    := $(FUZZ_HELPER:%=$(FUZZ_B)/curl_helper/%.o) $(FUZZ_B)/curl_helper/main-nomain.o
# the same targets without libFuzzer, for make check (standalone.c's main)
FUZZ_SA_BIN  := $(FUZZ_NAMES:%=$(B)/tests/fuzz/%)
FUZZ_SA_HOBJ := $(FUZZ_HELPER:%=$(B)/curl_helper/%.o) $(B)/tests/fuzz/main-nomain.o

# libfuzzer when $(FUZZ_CC) links a -fsanitize=fuzzer program, else standalone
FUZZ_PROBE = $(shell printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' | \
               $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1 && echo libfuzzer || echo standalone)
FUZZ_ENGINE = $(if $(filter 0 no none,$(FUZZ)),none,$(if $(filter auto,$(FUZZ)),$(FUZZ_PROBE),$(FUZZ)))

$(FUZZ_B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_B)/curl_helper/main-nomain.o: curl_helper/main.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Dmain=ot_main -Wno-missing-prototypes -c -o $@ $<

$(FUZZ_B)/libpoauth.a: $(FUZZ_CORE)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_B)/fuzz_git: $(FUZZ_HOBJ)
$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_B)/libpoauth.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	  $(if $(filter fuzz_git,$(notdir $@)),$(FUZZ_HOBJ)) $(FUZZ_B)/libpoauth.a $(FUZZ_LIBS)

$(B)/tests/fuzz/main-nomain.o: curl_helper/main.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Dmain=ot_main -Wno-missing-prototypes -c -o $@ $<

$(B)/tests/fuzz/fuzz_git: $(FUZZ_SA_HOBJ)
$(B)/tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/standalone.c \
	  $(if $(filter fuzz_git,$(notdir $@)),$(FUZZ_SA_HOBJ)) $(LIBCORE) $(ALL_LDFLAGS) $(FUZZ_LIBS)

fuzz: $(FUZZ_BIN)

# FUZZ_TARGETS="fuzz_config fuzz_jwt" limits fuzz-run and fuzz-merge.
fuzz-run: fuzz
	@tests/fuzz/run --build $(FUZZ_B) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-merge: fuzz
	@tests/fuzz/make-seeds $(FUZZ_B)/seeds >/dev/null
	@tests/fuzz/run --build $(FUZZ_B) --merge $(FUZZ_TARGETS)

# The binaries the corpus regression of make check runs, for FUZZ_ENGINE.
fuzz-regression:
	@case "$(FUZZ_ENGINE)" in \
	libfuzzer) $(MAKE) --no-print-directory $(FUZZ_BIN) ;; \
	standalone) $(MAKE) --no-print-directory $(FUZZ_SA_BIN) ;; \
	none) ;; \
	*) echo "FUZZ=$(FUZZ): use auto, libfuzzer, standalone or 0" >&2; exit 2 ;; \
	esac

# check and demo first make sure the Debian packages are there (installing
# them as root), then re-run make so that pkg-config sees them.
check:
	@tests/check-deps
	@$(MAKE) --no-print-directory check-run

check-run: all unit-tests test-tools
	@engine=$(FUZZ_ENGINE); \
	$(MAKE) --no-print-directory fuzz-regression FUZZ_ENGINE=$$engine && \
	case $$engine in libfuzzer) dir=$(abspath $(FUZZ_B)) ;; *) dir=$(abspath $(B))/tests/fuzz ;; esac && \
	echo "PO_BUILD_DIR=$(abspath $(B)) PO_FUZZ_ENGINE=$$engine python3 tests/run-tests $(TESTS)" && \
	PO_BUILD_DIR=$(abspath $(B)) PO_SANITIZE=$(SANITIZE) PO_VALGRIND=$(VALGRIND) CC=$(CC) \
	  PO_FUZZ_ENGINE=$$engine PO_FUZZ_DIR=$$dir python3 tests/run-tests $(TESTS)

bench: all
	@bench/run

demo:
	@tests/check-deps
	@$(MAKE) --no-print-directory demo-run

demo-run: all
	@PO_BUILD_DIR=$(abspath $(B)) tests/demo

install: all
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 $(MODULE) $(DESTDIR)$(PAMDIR)/pam_oauth.so
	install -d $(DESTDIR)$(LIBEXECDIR)/pam-oauth
	install -m 0755 $(REFRESHER) $(DESTDIR)$(LIBEXECDIR)/pam-oauth/session-refresh
	install -m 0644 man/pam-oauth-session-refresh.8 $(DESTDIR)$(MANDIR)/man8/pam-oauth-session-refresh.8
	@# setgid only where the group exists and this is the live system; a
	@# package (DESTDIR) sets owner and mode in its maintainer scripts.
	@if [ -z '$(DESTDIR)' ] && getent group $(SESSION_GROUP) >/dev/null; then \
	  chgrp $(SESSION_GROUP) $(LIBEXECDIR)/pam-oauth/session-refresh && \
	  chmod 2755 $(LIBEXECDIR)/pam-oauth/session-refresh; \
	else \
	  echo "note: $(LIBEXECDIR)/pam-oauth/session-refresh installed 0755; make it root:$(SESSION_GROUP) 2755 (see session-refresh(8))"; \
	fi
	install -m 0755 $(HELPER) $(DESTDIR)$(BINDIR)/oauth-token
	ln -sf oauth-token $(DESTDIR)$(BINDIR)/git-credential-oauth-token
	ln -sf oauth-token $(DESTDIR)$(BINDIR)/docker-credential-oauth-token
	install -m 0644 man/oauth-token.1 $(DESTDIR)$(MANDIR)/man1/oauth-token.1
	install -m 0644 man/pam-oauth.conf.5 $(DESTDIR)$(MANDIR)/man5/pam-oauth.conf.5
	install -m 0644 man/pam_oauth.8 $(DESTDIR)$(MANDIR)/man8/pam_oauth.8
	install -m 0600 examples/pam-oauth.conf $(DESTDIR)$(DOCDIR)/examples/pam-oauth.conf
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	@mkdir -p $(B)/systemd
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  'systemd/oauth-token-refresh@.service.in' > '$(B)/systemd/oauth-token-refresh@.service'
	install -m 0644 '$(B)/systemd/oauth-token-refresh@.service' \
	  'systemd/oauth-token-refresh@.timer' $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -d $(DESTDIR)$(TMPFILESDIR)
	sed -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' systemd/pam-oauth.tmpfiles.in \
	  > '$(B)/systemd/pam-oauth.tmpfiles'
	install -m 0644 '$(B)/systemd/pam-oauth.tmpfiles' $(DESTDIR)$(TMPFILESDIR)/pam-oauth.conf
	install -m 0644 completion/oauth-token.bash $(DESTDIR)$(BASHCOMPDIR)/oauth-token
	install -m 0644 completion/_oauth-token $(DESTDIR)$(ZSHCOMPDIR)/_oauth-token

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_oauth.so $(DESTDIR)$(BINDIR)/oauth-token \
	  $(DESTDIR)$(LIBEXECDIR)/pam-oauth/session-refresh \
	  $(DESTDIR)$(MANDIR)/man8/pam-oauth-session-refresh.8 \
	  $(DESTDIR)$(BINDIR)/git-credential-oauth-token \
	  $(DESTDIR)$(BINDIR)/docker-credential-oauth-token \
	  $(DESTDIR)$(MANDIR)/man1/oauth-token.1 $(DESTDIR)$(MANDIR)/man5/pam-oauth.conf.5 \
	  $(DESTDIR)$(MANDIR)/man8/pam_oauth.8 $(DESTDIR)$(DOCDIR)/examples/pam-oauth.conf \
	  '$(DESTDIR)$(SYSTEMDUNITDIR)/oauth-token-refresh@.service' \
	  '$(DESTDIR)$(SYSTEMDUNITDIR)/oauth-token-refresh@.timer' \
	  $(DESTDIR)$(BASHCOMPDIR)/oauth-token $(DESTDIR)$(ZSHCOMPDIR)/_oauth-token \
	  $(DESTDIR)$(TMPFILESDIR)/pam-oauth.conf
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) $(DESTDIR)$(LIBEXECDIR)/pam-oauth 2>/dev/null

format:
	clang-format -i common/*.[ch] pam_oauth/*.[ch] curl_helper/*.[ch] session_refresh/*.c \
	  tests/unit/*.c tests/tools/*.[ch] tests/fuzz/*.[ch] tests/failalloc/*.[ch]

clean:
	rm -rf build common/*.o common/*.d common/*.a pam_oauth/*.o pam_oauth/*.d \
	  pam_oauth/*.so curl_helper/*.o curl_helper/*.d curl_helper/oauth-token \
	  curl_helper/git-credential-oauth-token \
	  curl_helper/docker-credential-oauth-token tests/unit/*.d \
	  session_refresh/*.o session_refresh/*.d session_refresh/session-refresh \
	  'systemd/oauth-token-refresh@.service' systemd/pam-oauth.tmpfiles \
	  $(UNIT_SRC:%.c=%) $(TOOL_SRC:%.c=%) tests/tools/*.d \
	  $(FUZZ_SRC:%.c=%) tests/fuzz/*.d tests/fuzz/*.o \
	  tests/failalloc/pam_oauth.so tests/failalloc/oauth-token \
	  tests/failalloc/pam-failwalk tests/failalloc/*.o tests/failalloc/*.d

-include $(COMMON_OBJ:.o=.d) $(PAM_OBJ:.o=.d) $(HELPER_OBJ:.o=.d) $(REFRESH_OBJ:.o=.d) \
  $(UNIT_BIN:=.d) $(TOOL_BIN:=.d) $(FUZZ_CORE:.o=.d) $(FUZZ_HOBJ:.o=.d) \
  $(FUZZ_BIN:=.d) $(FUZZ_SA_BIN:=.d) $(B)/tests/fuzz/main-nomain.d \
  $(FA_B)/wrap.d $(FA_B)/pam-failwalk.d
