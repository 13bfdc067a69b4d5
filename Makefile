# sdumc build. `make` builds the library and the binary; `make test` also installs what the
# tests need (scripts/setup.sh) and runs them; `make test-asan` does the same under
# AddressSanitizer + UndefinedBehaviorSanitizer. OPENMP=0 builds without OpenMP.

CC      ?= gcc
OPENMP  ?= 1
SAN     ?= 0
MPI     ?= 0
BUILD   ?= build
PYTHON  := /usr/bin/python3
# The version is the public header's (SDUMC_VERSION_MAJOR/MINOR/PATCH); the soname carries MAJOR,
# which changes whenever the ABI does (docs/API.md).
version_part = $(shell sed -n 's/^\#define SDUMC_VERSION_$(1) *\([0-9][0-9]*\).*/\1/p' include/sdumc.h)
SOVERSION := $(call version_part,MAJOR)
VERSION   := $(SOVERSION).$(call version_part,MINOR).$(call version_part,PATCH)

BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
# Audio input (src/audio): libsndfile decodes, libsoxr resamples.
AUDIO_CFLAGS := $(shell pkg-config --cflags sndfile soxr 2>/dev/null)
AUDIO_LIBS   := $(shell pkg-config --libs sndfile soxr 2>/dev/null || echo -lsndfile -lsoxr)

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
# -fvect-cost-model=dynamic: GCC's -O2 default ("very cheap") vectorises only loops of known
# length; this lets the elementwise loops vectorise too (same IEEE operations, same results).
# -fno-math-errno: sqrtf and friends need not set errno (nothing reads it), so they vectorise.
CFLAGS  += -fvect-cost-model=dynamic -fno-math-errno
CFLAGS  += -std=c11 $(WARN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fPIC \
           -DSDUMC_VERSION='"$(VERSION)"' -Isrc -Iinclude $(BLAS_CFLAGS) $(AUDIO_CFLAGS)
LDLIBS  := $(BLAS_LIBS) $(AUDIO_LIBS) -lm -lpthread

ifeq ($(OPENMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif
ifeq ($(MPI),1)
LDLIBS  += $(MPI_LIBS)
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# MPI: Open MPI's or MPICH's flags from pkg-config, else from Open MPI's mpicc (recursive variables:
# evaluated only by the rules that use them). core/dist.h has one implementation per build:
# dist_single.c (one process) by default, dist_mpi.c with MPI=1. Without MPI=1, `make tests` still
# links $(BUILD)/sdumc-mpi (the same objects with dist_mpi.o) when MPI is installed, for the MPI tests.
MPI_PKG     = $(firstword $(foreach p,ompi-c mpich,$(shell pkg-config --exists $(p) 2>/dev/null && echo $(p))))
MPI_CFLAGS  = $(if $(MPI_PKG),$(shell pkg-config --cflags $(MPI_PKG)),$(shell mpicc --showme:compile 2>/dev/null))
MPI_LIBS    = $(if $(MPI_PKG),$(shell pkg-config --libs $(MPI_PKG)),$(shell mpicc --showme:link 2>/dev/null))
MPI_PRESENT = $(or $(MPI_PKG),$(shell command -v mpicc 2>/dev/null))
DIST_SRC := src/core/dist_$(if $(filter 1,$(MPI)),mpi,single).c

# Library sources: everything under src/ but the command line (and the other dist_*.c).
LIB_SRC  := $(sort $(filter-out src/core/dist_%.c,$(shell find src -name '*.c' -not -path 'src/cli/*')) $(DIST_SRC))
# Layer and loss code, and the assembled flows with the parameter views they bind, are compiled
# a second time in double precision (see src/core/real.h) for the finite-difference checks.
DUAL_SRC := $(sort $(wildcard src/nn/*.c src/loss/*.c) src/model/flow.c src/model/flow_backward.c \
                   src/model/frames.c src/model/params.c)
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(DUAL_SRC:%.c=$(BUILD)/obj/%_f64.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

STATIC_LIB := $(BUILD)/libsdumc.a
SHARED_LIB := $(BUILD)/libsdumc.so.$(SOVERSION)
BIN        := $(BUILD)/sdumc

.PHONY: all lib test test-asan check-setup setup clean tests demo
all: $(BIN) $(STATIC_LIB) $(SHARED_LIB)
lib: $(STATIC_LIB) $(SHARED_LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/src/core/dist_mpi.o: CFLAGS += $(MPI_CFLAGS)

$(BUILD)/obj/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSD_REAL_DOUBLE -MMD -MP -c $< -o $@

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The shared library exports the public API only: a version script hides every symbol that is not
# sdumc_* (the static library keeps them all: the tests use internal functions).
$(SHARED_LIB): $(LIB_OBJ) src/api/exports.map
	$(CC) -shared -Wl,--version-script=src/api/exports.map -Wl,-soname,libsdumc.so.$(SOVERSION) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	ln -sf libsdumc.so.$(SOVERSION) $(BUILD)/libsdumc.so

$(BIN): $(CLI_OBJ) $(STATIC_LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC_LIB) $(LDLIBS)

# The test harness, linked into every test: case lines and helpers (harness.c), the
# finite-difference gradient checker (gradcheck.c), the byte mutations of the format tests
# (mutate.c).
HARNESS_OBJ := $(addprefix $(BUILD)/tests/,harness.o gradcheck.o mutate.o)
$(HARNESS_OBJ): $(BUILD)/tests/%.o: tests/%.c tests/%.h tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(HARNESS_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -MMD -MP $(LDFLAGS) -o $@ $< $(HARNESS_OBJ) $(STATIC_LIB) $(LDLIBS)

tests: $(TEST_BIN) $(BIN)

# The MPI variant of the binary for the MPI tests: the library's objects with dist_mpi.o in place
# of dist_single.o (nothing else is compiled twice).
MPI_BIN := $(BUILD)/sdumc-mpi
$(MPI_BIN): $(CLI_OBJ) $(filter-out $(BUILD)/obj/src/core/dist_single.o,$(LIB_OBJ)) $(BUILD)/obj/src/core/dist_mpi.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS)
ifneq ($(MPI),1)
tests: $(if $(MPI_PRESENT),$(MPI_BIN))
endif

# Logit parity with llama.cpp (tests/parity/llama_cpp_parity.c), built only when LLAMA_CPP_DIR names
# a llama.cpp checkout built with cmake into LLAMA_CPP_DIR/build (bench/README.md says how); then
# `make test` runs it with the others, and `make test-llama-cpp` alone.
LLAMA_CPP_DIR ?=
ifneq ($(LLAMA_CPP_DIR),)
LLAMA_CPP_LIBS := $(addprefix $(LLAMA_CPP_DIR)/build/, src/libllama.a ggml/src/libggml.a \
                    ggml/src/libggml-cpu.a ggml/src/libggml-base.a)
PARITY_BIN := $(BUILD)/tests/test_llama_cpp_parity
tests: $(PARITY_BIN)
$(PARITY_BIN): tests/parity/llama_cpp_parity.c $(STATIC_LIB) $(LLAMA_CPP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -I$(LLAMA_CPP_DIR)/include -I$(LLAMA_CPP_DIR)/ggml/include $(LDFLAGS) -fopenmp -o $@ $< \
	  $(STATIC_LIB) $(LLAMA_CPP_LIBS) $(LDLIBS) -lstdc++ -fopenmp
endif
.PHONY: test-llama-cpp
test-llama-cpp:
	@test -n "$(LLAMA_CPP_DIR)" || { echo "make test-llama-cpp: set LLAMA_CPP_DIR to a llama.cpp build (bench/README.md)"; exit 2; }
	@$(MAKE) --no-print-directory $(PARITY_BIN)
	@$(PARITY_BIN)

setup:
	@bash scripts/setup.sh

# The README's test command: set up, build, run every test; the last line is "N passed, N failed".
test: setup
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) bash tests/run.sh

test-asan: setup
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  BUILD=build/asan SD_SANITIZED=1 bash tests/run.sh

# The README's first command: set up, build, train SDUMC and a baseline on a synthetic corpus.
demo: setup
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash scripts/demo.sh

# docs/ROBUSTNESS.md: the demo corpus, SDUMC and the baseline with 3 seeds each, `sdumc robustness`.
.PHONY: demo-robustness
demo-robustness: setup
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash scripts/demo_robustness.sh

clean:
	rm -rf build

# ---- Install, the example, the ThreadSanitizer test (issue 6) ----
# `make install PREFIX=/opt/sdumc` (DESTDIR for staging) installs bin/sdumc, include/sdumc.h,
# lib/libsdumc.a, lib/libsdumc.so.$(VERSION) with its soname link libsdumc.so.$(SOVERSION) and the
# development link libsdumc.so, lib/pkgconfig/sdumc.pc, and the Python binding sdumc.py in
# $(PYTHONDIR) (which loads the library installed beside it). `make uninstall` with the same PREFIX
# removes exactly those files.
PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The Python binding: Debian's python3 searches $(PREFIX)/lib/python3.X/dist-packages for
# PREFIX=/usr/local; for another PREFIX add this folder to PYTHONPATH (python/README.md).
PYTHONDIR    ?= $(PREFIX)/lib/python$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)/dist-packages
PC_LIBS_PRIVATE := $(BLAS_LIBS) $(AUDIO_LIBS) -lm -lpthread $(if $(filter 1,$(OPENMP)),-lgomp)
EXAMPLE      := $(BUILD)/examples/predict_utterance

.PHONY: install uninstall example test-tsan

# The Python binding and the install test load the shared library: build it with the tests.
tests: $(SHARED_LIB)

install: $(BIN) $(STATIC_LIB) $(SHARED_LIB)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/sdumc
	install -m 644 include/sdumc.h $(DESTDIR)$(INCLUDEDIR)/sdumc.h
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libsdumc.a
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libsdumc.so.$(VERSION)
	ln -sf libsdumc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsdumc.so.$(SOVERSION)
	ln -sf libsdumc.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libsdumc.so
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$(INCLUDEDIR)' 'libdir=$(LIBDIR)' '' \
	  'Name: sdumc' 'Description: SDUMC multimodal sentiment analysis robust to a missing transcript' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lsdumc' \
	  'Libs.private: $(PC_LIBS_PRIVATE)' > $(DESTDIR)$(PKGCONFIGDIR)/sdumc.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/sdumc.pc
	install -d $(DESTDIR)$(PYTHONDIR)
	sed 's|^_INSTALLED_LIBDIR = None|_INSTALLED_LIBDIR = "$(LIBDIR)"|' python/sdumc.py > $(DESTDIR)$(PYTHONDIR)/sdumc.py
	chmod 644 $(DESTDIR)$(PYTHONDIR)/sdumc.py

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sdumc $(DESTDIR)$(INCLUDEDIR)/sdumc.h $(DESTDIR)$(LIBDIR)/libsdumc.a \
	  $(DESTDIR)$(LIBDIR)/libsdumc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libsdumc.so.$(SOVERSION) \
	  $(DESTDIR)$(LIBDIR)/libsdumc.so $(DESTDIR)$(PKGCONFIGDIR)/sdumc.pc $(DESTDIR)$(PYTHONDIR)/sdumc.py \
	  $(DESTDIR)$(PYTHONDIR)/__pycache__/sdumc.*.pyc

# The example against the build tree (tests/scripts/test_install.sh builds it against an
# installed copy with pkg-config, as a user would).
example: $(EXAMPLE)
$(EXAMPLE): examples/predict_utterance.c include/sdumc.h $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC_LIB) $(LDLIBS)

# The public API from 8 threads under ThreadSanitizer, without OpenMP (also part of `make test`).
test-tsan:
	@bash tests/scripts/test_api_tsan.sh

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)

# `make bench`: sdumc against the PyTorch reference side by side (bench/README.md; options there),
# then the public API's batch-1 latency; BENCH_LLM=1 adds the LLM decoder on 7B-shaped files, side by
# side with llama.cpp when LLAMA_CPP_DIR is set (bench/README.md); BENCH_WAVLM=1 WavLM-Large on 10 s
# of audio against the PyTorch reference.
.PHONY: bench
bench: $(STATIC_LIB) $(BIN)
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS) $(LDFLAGS) -o $(BUILD)/bench/bench_sdumc bench/bench_sdumc.c $(STATIC_LIB) $(LDLIBS) -ldl
	@BUILD=$(BUILD) bash bench/bench.sh
	@BUILD=$(BUILD) bash bench/bench_api.sh
	@if [ "$(BENCH_LLM)" = 1 ]; then BUILD=$(BUILD) LLAMA_CPP_DIR=$(LLAMA_CPP_DIR) bash bench/bench_llm.sh; \
	 else echo "(LLM decoder against llama.cpp: make bench BENCH_LLM=1 [LLAMA_CPP_DIR=...]; bench/README.md)"; fi
	@if [ "$(BENCH_WAVLM)" = 1 ]; then BUILD=$(BUILD) bash bench/bench_wavlm.sh; \
	 else echo "(WavLM benchmark: make bench BENCH_WAVLM=1, or bash bench/bench_wavlm.sh alone; it writes a 630 MB model to /tmp)"; fi

# ---- Fuzzing (issue 9) ----
# `make fuzz FUZZ_SECONDS=N` builds the libFuzzer harnesses fuzz/fuzz_*.c with clang, ASan and UBSan
# (fuzz/fuzz.mk, into build/fuzz) and runs each for N seconds, one after the other (fuzz/README.md).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
.PHONY: fuzz fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory -f fuzz/fuzz.mk FUZZ_CC=$(FUZZ_CC)
fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh
