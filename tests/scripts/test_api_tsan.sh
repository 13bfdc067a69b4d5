#!/usr/bin/env bash
# The public API under ThreadSanitizer: builds tests/test_api_threads.c with the sources it needs
# (the API, the model, the layers, core, file formats) using -fsanitize=thread and without OpenMP
# (libgomp is not instrumented), in a temporary folder, and runs it: 8 threads on one shared model
# must give the single-threaded results with no race reported. Prints SKIP when neither clang nor
# gcc can build a ThreadSanitizer program here. Independent of $BUILD (it builds its own objects).
set -u
cd "$(dirname "$0")/../.."
name=api_threads_under_tsan
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A compiler that can build and run a TSan program.
echo 'int main(void) { return 0; }' >"$tmp/probe.c"
cc=
for c in clang gcc; do
  command -v "$c" >/dev/null 2>&1 || continue
  if "$c" -fsanitize=thread "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1 && "$tmp/probe" >/dev/null 2>&1; then
    cc=$c
    break
  fi
done
if [ -z "$cc" ]; then
  echo "SKIP $name (no compiler here can build a -fsanitize=thread program)"
  exit 0
fi

blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
blas_libs=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
v_part() { sed -n "s/^#define SDUMC_VERSION_$1 *\([0-9]*\).*/\1/p" include/sdumc.h; }
version=$(v_part MAJOR).$(v_part MINOR).$(v_part PATCH)
# The sources the API needs today; if the link finds more needed (another folder started to be
# used by the model code), the rest of src/ but the command line is compiled too and the link
# retried. core/dist_mpi.c is the MPI build's (make MPI=1); this one takes core/dist_single.c.
srcs=$(ls src/api/*.c src/model/*.c src/nn/*.c src/core/*.c src/io/*.c | grep -vx src/core/dist_mpi.c)
export cc tmp blas_cflags version
compile() { # sources on stdin; one object per source, named after its path (two params.c exist)
  xargs -P2 -I{} sh -c '"$cc" -std=c11 -O1 -g -fsanitize=thread -fno-omit-frame-pointer \
      -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DSDUMC_VERSION="\"$version\"" \
      -Wall -Wextra -Isrc -Iinclude -Itests $blas_cflags \
      -c "$1" -o "$tmp/$obj/$(echo "$1" | tr / _).o" 2>>"$tmp/build.log"' _ {}
}
link() {
  "$cc" -fsanitize=thread "$tmp"/obj/*.o $extra -o "$tmp/test_api_threads" $blas_libs -lm -lpthread 2>"$tmp/link.log"
}
mkdir -p "$tmp/obj" "$tmp/rest"
obj=obj extra=
export obj
if ! printf '%s\n' $srcs tests/test_api_threads.c tests/harness.c | compile; then
  cat "$tmp/build.log"
  echo "FAIL $name (the ThreadSanitizer build with $cc failed)"
  exit 0
fi
if ! link; then
  rest=$(find src -name '*.c' -not -path 'src/cli/*' -not -name dist_mpi.c | sort | grep -vxF "$(printf '%s\n' $srcs)")
  obj=rest
  printf '%s\n' $rest | compile || true # what does not compile here is not needed, or the link says so
  ar rcs "$tmp/rest.a" "$tmp"/rest/*.o 2>/dev/null
  extra="$tmp/rest.a" # an archive: only the objects the link needs are taken
  if ! link; then
    cat "$tmp/link.log"
    echo "FAIL $name (linking the ThreadSanitizer build with $cc failed)"
    exit 0
  fi
fi

TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" "$tmp/test_api_threads" >"$tmp/run.log" 2>&1
rc=$?
sed 's/^/  /' "$tmp/run.log" | grep -v '^  \(PASS\|FAIL\|SKIP\) ' | head -60
if [ $rc -ne 0 ] || grep -q 'ThreadSanitizer' "$tmp/run.log" || ! grep -q '^PASS api_threads_8_match_single_thread' "$tmp/run.log"; then
  grep '^\(FAIL\|SKIP\) ' "$tmp/run.log" | sed 's/^/  (inner) /'
  echo "FAIL $name (exit $rc; built with $cc -fsanitize=thread, no OpenMP)"
else
  echo "PASS $name (built with $cc -fsanitize=thread, no OpenMP)"
fi
