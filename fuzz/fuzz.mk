# Builds the libFuzzer harnesses (fuzz/fuzz_*.c) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer. Used by `make fuzz` and tests/scripts/test_fuzz_smoke.sh:
#   make -f fuzz/fuzz.mk [FUZZ_CC=clang] [FUZZ_BUILD=build/fuzz]
# The library is compiled a second time here, instrumented for coverage (-fsanitize=fuzzer-no-link),
# without OpenMP (the parsers are single-threaded; ASan + libgomp only adds noise).

FUZZ_CC    ?= clang
FUZZ_BUILD ?= build/fuzz

BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
AUDIO_CFLAGS := $(shell pkg-config --cflags sndfile soxr 2>/dev/null)
AUDIO_LIBS   := $(shell pkg-config --libs sndfile soxr 2>/dev/null || echo -lsndfile -lsoxr)

SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_FLAGS := -O1 -g -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DSDUMC_VERSION='"fuzz"' -DSD_FUZZING \
              -Isrc -Iinclude $(BLAS_CFLAGS) $(AUDIO_CFLAGS) $(SAN_FLAGS)

# The library (all of src/ but the command line and the LLM runtime, which the parsers do not need
# and whose CPU-feature checks clang 14 does not know; dist_mpi.c is the MPI build's) plus the tokenizer
# and the option parser.
LIB_SRC  := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/llm/*' -not -name dist_mpi.c)) \
            src/llm/tokenizer.c src/cli/args.c
DUAL_SRC := $(sort $(wildcard src/nn/*.c src/loss/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(DUAL_SRC:%.c=$(FUZZ_BUILD)/obj/%_f64.o)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/bin/%)
LIB      := $(FUZZ_BUILD)/libsdumc_fuzz.a

.PHONY: all
all: $(FUZZ_BIN)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/%_f64.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -DSD_REAL_DOUBLE -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/bin/%: fuzz/%.c fuzz/fuzz_util.h $(LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -Ifuzz -o $@ $< $(LIB) $(BLAS_LIBS) $(AUDIO_LIBS) -lm -lpthread

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
