#!/usr/bin/env bash
# `make install` into a temporary prefix and what a user of the installed copy sees: the files
# (binary, header, static and shared library with its soname, pkg-config file, Python binding); the
# header compiling as C11 and C++17 with no warnings; examples/predict_utterance.c built from a copy
# outside the tree with only the installed header and pkg-config, linked shared and static, reading
# float16 .npy files through the library's reader and setting its threads through params, scoring
# an utterance as `sdumc predict-one` does; the installed Python module loading the installed
# library; `make uninstall` removing every file. Uses $BUILD (build/asan under `make test-asan`,
# where SD_SANITIZED=1 adds the sanitizer flags the instrumented library needs).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SAN=${SD_SANITIZED:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
# The version is the header's; the soname carries its MAJOR (docs/API.md).
v_part() { sed -n "s/^#define SDUMC_VERSION_$1 *\([0-9]*\).*/\1/p" include/sdumc.h; }
soversion=$(v_part MAJOR)
version=$soversion.$(v_part MINOR).$(v_part PATCH)
san_flags=
[ "$SAN" = 1 ] && san_flags="-fsanitize=address,undefined"

pass() { echo "PASS install_$1${2:+ ($2)}"; }
fail() { echo "FAIL install_$1${2:+ ($2)}"; }

# ---- make install ----
if ! make --no-print-directory -s install BUILD="$BUILD" SAN="$SAN" PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  fail make_install "make install PREFIX=$prefix failed"
  exit 0
fi
pydir=$(/usr/bin/python3 -c 'import sys; print("lib/python%d.%d/dist-packages" % sys.version_info[:2])')
missing=
for f in bin/sdumc include/sdumc.h lib/libsdumc.a "lib/libsdumc.so.$version" "lib/libsdumc.so.$soversion" \
         lib/libsdumc.so lib/pkgconfig/sdumc.pc "$pydir/sdumc.py"; do
  [ -e "$prefix/$f" ] || missing="$missing $f"
done
soname=$(readelf -d "$prefix/lib/libsdumc.so.$version" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
links="$(readlink "$prefix/lib/libsdumc.so") $(readlink "$prefix/lib/libsdumc.so.$soversion")"
if [ -z "$missing" ] && [ "$soname" = "libsdumc.so.$soversion" ] && \
   [ "$links" = "libsdumc.so.$soversion libsdumc.so.$version" ] && [ -x "$prefix/bin/sdumc" ]; then
  pass files "soname $soname"
else
  fail files "missing:${missing:- none}; soname '$soname'; links '$links'"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pc_version=$(pkg-config --modversion sdumc 2>&1)
pc_cflags=$(pkg-config --cflags sdumc 2>&1 | sed 's/ *$//')
pc_libdir=$(pkg-config --variable=libdir sdumc 2>&1)
if [ "$pc_version" = "$version" ] && [ "$pc_cflags" = "-I$prefix/include" ] && [ "$pc_libdir" = "$prefix/lib" ]; then
  pass pkg_config
else
  fail pkg_config "version '$pc_version', cflags '$pc_cflags', libdir '$pc_libdir'"
fi

# ---- exported names: only sdumc_ (public) and sd_ (internal, static library) ----
# An application linking libsdumc must never meet one of our names by accident. Sanitizer and
# OpenMP runtime names (__asan_*, __ubsan_*, .omp_*) are the compilers', not ours.
foreign=$( { nm -g --defined-only "$prefix/lib/libsdumc.a" 2>/dev/null;
             nm -D --defined-only "$prefix/lib/libsdumc.so.$version" 2>/dev/null; } |
  awk 'NF == 3 { print $3 }' | sed 's/@.*//' |
  grep -v -E '^(sdumc_|sd_|__asan|__ubsan|__odr_asan|__sancov|\.omp_|\.gomp_critical_user_sd_|_init$|_fini$)' | sort -u)
nsym=$( { nm -g --defined-only "$prefix/lib/libsdumc.a"; nm -D --defined-only "$prefix/lib/libsdumc.so.$version"; } 2>/dev/null | awk 'NF == 3' | wc -l)
if [ -z "$foreign" ] && [ "$nsym" -gt 100 ]; then
  pass exported_names "$nsym defined globals, all sdumc_ or sd_"
else
  fail exported_names "$nsym globals; unprefixed: $(echo $foreign | head -c 400)"
fi

# ---- the installed header alone: C11 and C++17, every warning an error ----
cat >"$tmp/use_header.c" <<'EOF'
#include <sdumc.h>
#include <sdumc.h> /* include guard */
int use_header(const char *path, const void *bytes, size_t n);
int use_header(const char *path, const void *bytes, size_t n) {
    sdumc_error err;
    sdumc_model *m = 0, *m2 = 0;
    sdumc_info info;
    sdumc_context *ctx = 0, *ctx2 = 0;
    sdumc_utterance u = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    float score = 0.0f, z[4];
    sdumc_model_params mp = sdumc_model_default_params();
    sdumc_context_params cp = sdumc_context_default_params();
    info.size = sizeof info;
    mp.n_threads = 2;
    mp.mia = SDUMC_MIA_ON;
    mp.use_mmap = 0;
    cp.n_threads = 1;
    if (sdumc_model_load(path, &m, &err) != SDUMC_OK) return (int)err.code;
    sdumc_model_load_with_params(path, &mp, &m2, &err);
    sdumc_model_free(m2);
    sdumc_model_load_from_memory(bytes, n, 0, &m2, &err);
    sdumc_model_info(m, &info, &err);
    sdumc_context_new(&ctx, &err);
    sdumc_context_new_with_params(&cp, &ctx2, &err);
    sdumc_features_load_npy(path, &u.audio, &err);
    sdumc_predict(m, ctx, &u, SDUMC_FLOW_COMPLETE, &score, &err);
    sdumc_embed(m, ctx2, &u, SDUMC_FLOW_TEXT_MISSING, z, 4, &score, &err);
    sdumc_predict_batch(m2, ctx, &u, 1, SDUMC_FLOW_TEXT_MISSING_MIA, &score, 0, &err);
    sdumc_features_free(&u.audio);
    sdumc_context_free(ctx);
    sdumc_context_free(ctx2);
    sdumc_model_free(m);
    sdumc_model_free(m2);
    return (int)sizeof(sdumc_status_name(SDUMC_E_UNSUPPORTED)) + (int)sizeof(sdumc_version()) +
           SDUMC_VERSION_MAJOR + SDUMC_VERSION_MINOR + SDUMC_VERSION_PATCH + (int)info.mia_source;
}
EOF
cp "$tmp/use_header.c" "$tmp/use_header.cpp"
strict="-Wall -Wextra -Wpedantic -Wshadow -Werror"
header_ok=1; compilers=
for cc in gcc clang; do
  command -v $cc >/dev/null 2>&1 || continue
  if $cc -std=c11 $strict -Wstrict-prototypes -Wmissing-prototypes $pc_cflags -c "$tmp/use_header.c" -o "$tmp/h.o" 2>"$tmp/h.log"; then
    compilers="$compilers $cc/C11"
  else
    cat "$tmp/h.log"; header_ok=0
  fi
done
for cxx in g++ clang++; do
  command -v $cxx >/dev/null 2>&1 || continue
  if $cxx -std=c++17 $strict $pc_cflags -c "$tmp/use_header.cpp" -o "$tmp/h.o" 2>"$tmp/h.log"; then
    compilers="$compilers $cxx/C++17"
  else
    cat "$tmp/h.log"; header_ok=0
  fi
done
if [ $header_ok = 1 ] && [ -n "$compilers" ]; then pass header_c11_cxx17 "no warnings:$compilers"; else fail header_c11_cxx17; fi

# ---- a model and one utterance, with the installed binary ----
"$prefix/bin/sdumc" synth --out "$tmp/ds" --n 20 --seed 4 >"$tmp/synth.log" 2>&1 &&
  "$prefix/bin/sdumc" train --data "$tmp/ds" --out "$tmp/m.safetensors" --epochs 1 --hidden 8 --batch-size 8 \
    --threads 1 >"$tmp/train.log" 2>&1
if [ ! -f "$tmp/m.safetensors" ]; then
  cat "$tmp/synth.log" "$tmp/train.log"
  fail example "could not make a model with the installed sdumc"
  exit 0
fi
name=$(sed -n 2p "$tmp/ds/labels.csv" | cut -d, -f1)
[ "$(head -1 "$tmp/ds/labels.csv" | cut -d, -f1)" = name ] || name=$(ls "$tmp/ds/audio" | head -1 | sed 's/\.npy$//')
# The utterance's features as float16 files (what `sdumc synth --dims mosei` writes).
mkdir -p "$tmp/f16"
for m in audio text video text_sim; do
  /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1]).astype(np.float16))" \
    "$tmp/ds/$m/$name.npy" "$tmp/f16/$m.npy" || { fail example "could not write float16 features"; exit 0; }
done
feats=("$tmp/f16/audio.npy" "$tmp/f16/text.npy" "$tmp/f16/video.npy")
feats_sim=("$tmp/f16/audio.npy" "$tmp/f16/text_sim.npy" "$tmp/f16/video.npy")
want=$("$prefix/bin/sdumc" predict-one --model "$tmp/m.safetensors" --audio "${feats[0]}" --text "${feats[1]}" \
  --video "${feats[2]}" 2>&1)
want_sim=$("$prefix/bin/sdumc" predict-one --model "$tmp/m.safetensors" --audio "${feats_sim[0]}" \
  --sim-text "${feats_sim[1]}" --video "${feats_sim[2]}" 2>&1)

# ---- the example, from a copy outside the tree, with pkg-config only ----
mkdir -p "$tmp/user"
cp examples/predict_utterance.c "$tmp/user/"
(
  cd "$tmp/user" || exit 1
  cc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror $san_flags $(pkg-config --cflags sdumc) predict_utterance.c \
    -o predict_shared $(pkg-config --libs sdumc) -Wl,-rpath,"$(pkg-config --variable=libdir sdumc)" 2>build.log &&
  cc -std=c11 -O2 $san_flags $(pkg-config --cflags sdumc) predict_utterance.c -o predict_static \
    "$(pkg-config --variable=libdir sdumc)/libsdumc.a" $(pkg-config --libs --static sdumc | sed 's/-lsdumc//') 2>>build.log
) || { cat "$tmp/user/build.log"; fail example "building the example against the installed copy failed"; exit 0; }
needed=$(readelf -d "$tmp/user/predict_shared" | sed -n 's/.*Shared library: \[\(libsdumc[^]]*\)\].*/\1/p')
static_needed=$(readelf -d "$tmp/user/predict_static" | grep -c 'libsdumc')
for kind in shared static; do
  got=$("$tmp/user/predict_$kind" "$tmp/m.safetensors" "${feats[@]}" --threads 2 2>&1)
  got_sim=$("$tmp/user/predict_$kind" "$tmp/m.safetensors" "${feats_sim[@]}" --missing 2>&1)
  s=$(echo "$got" | sed -n 's/^score //p'); s_sim=$(echo "$got_sim" | sed -n 's/^score //p')
  echo "  example ($kind): complete $s, text-missing $s_sim; sdumc predict-one: $want, $want_sim"
  if [ -n "$s" ] && [ "$s" = "$want" ] && [ "$s_sim" = "$want_sim" ] && [ "$s" != "$s_sim" ] &&
     echo "$got" | grep -q ', 2 threads$'; then
    pass "example_$kind" "float16 .npy through sdumc_features_load_npy, 2 threads through params"
  else
    echo "$got"; echo "$got_sim"
    fail "example_$kind" "scores differ from sdumc predict-one"
  fi
done
if [ "$needed" = "libsdumc.so.$soversion" ] && [ "$static_needed" = 0 ]; then
  pass example_linkage "shared example needs $needed; static one needs no libsdumc"
else
  fail example_linkage "shared needs '$needed', static mentions libsdumc $static_needed times"
fi
# A bad call through the installed library: the message reaches the user.
bad=$("$tmp/user/predict_shared" "$tmp/m.safetensors" "${feats[0]}" "${feats[0]}" "${feats[2]}" 2>&1)
if echo "$bad" | grep -q 'error (shape mismatch): .*text features have dim 32, the model expects 48'; then
  pass example_error_message
else
  echo "$bad"; fail example_error_message "the library's message did not reach the user"
fi

# ---- the installed Python binding, from outside the tree, with the installed library ----
preload=
[ "$SAN" = 1 ] && preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
py=$(cd "$tmp" && env -u SDUMC_LIBRARY PYTHONPATH="$prefix/$pydir" LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 \
  /usr/bin/python3 -c '
import sys, numpy as np, sdumc
m = sdumc.Model(sys.argv[1])
a, t, v = (np.load(p) for p in sys.argv[2:5])
print(sdumc.__file__, sdumc.load_library()._name, sdumc.version(), sdumc.__version__, "%.9g" % m.predict(a, t, v))
' "$tmp/m.safetensors" "${feats[@]}" 2>&1)
set -- $py
if [ "$1" = "$prefix/$pydir/sdumc.py" ] && [ "$2" = "$prefix/lib/libsdumc.so.$soversion" ] && [ "$3" = "$version" ] &&
   [ "$4" = "$version" ] && [ "$5" = "$want" ]; then
  pass python_installed "PYTHONPATH=PREFIX/$pydir; loads PREFIX/lib/libsdumc.so.$soversion; score as predict-one"
else
  echo "  $py"; fail python_installed
fi

# ---- make uninstall ----
make --no-print-directory -s uninstall BUILD="$BUILD" SAN="$SAN" PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1
left=$(find "$prefix" \( -type f -o -type l \) | sed "s|$prefix/||" | tr '\n' ' ')
if [ -z "$left" ]; then pass uninstall; else fail uninstall "left: $left"; fi
