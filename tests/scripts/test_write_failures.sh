#!/usr/bin/env bash
# Crash-safe output (issue 9, item 2): every failed write gives a clear error naming the file and
# the reason, leaves the earlier file byte-for-byte intact, and leaves no temporary behind.
#
# Files: the model (OUT), the training state (OUT.state), the report (OUT.report.html), all from
# `sdumc train`, and a predictions CSV from `sdumc predict`. The old files come from a run with
# --seed 1; the failing commands would write different content (--seed 2).
#
# Failure modes, each aimed at one file (the command's earlier writes succeed, the aimed one fails):
#   fsize      RLIMIT_FSIZE (`ulimit -f`, SIGXFSZ ignored): a portable disk-full stand-in (EFBIG)
#   tmpfs-full a small tmpfs filled so that exactly the aimed file does not fit (ENOSPC); needs
#              root and mount, SKIP otherwise
#   sticky     permission denied on the file: a sticky world-writable folder where the old file
#              belongs to root and the command runs as nobody, so the rename over it fails (EPERM);
#              needs root and setpriv, SKIP otherwise
# Folder-wide modes (the command fails at its first write, the model for train; every old file of
# the folder is checked intact):
#   no-write-permission  a root-owned 0755 folder, the command runs as nobody (EACCES)
#   read-only            a read-only tmpfs mount (EROFS); without mount, chmod 0555 and a non-root
#                        user (EACCES); SKIP when neither is possible
# The resumed run that writes the report is a complete seed-2 state resumed (no epoch left: it
# writes the model, the log and the report only).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SDUMC=$PWD/$BUILD/sdumc
if [ ! -x "$SDUMC" ]; then echo "FAIL write_failures: $SDUMC is not built"; exit 0; fi

T=$(mktemp -d)
chmod 755 "$T"
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

# --normalize none: the standardisation statistics in the model's metadata would make the model
# file as large as the report, and the tmpfs case below could not leave room for one and not the other.
COMMON=(--hidden 4 --epochs 10 --batch-size 64 --threads 1 --normalize none)
am_root=0; [ "$(id -u)" -eq 0 ] && am_root=1
can_setpriv=0; command -v setpriv >/dev/null 2>&1 && [ $am_root -eq 1 ] && can_setpriv=1
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# ---- reference runs -------------------------------------------------------------------------
"$SDUMC" synth --out "$T/ds" --n 200 --seed 1 >/dev/null 2>&1 || { echo "FAIL write_failures: synth"; exit 0; }
mkdir -p "$T/old" "$T/new"
"$SDUMC" train --data "$T/ds" --out "$T/old/m.safetensors" --seed 1 "${COMMON[@]}" >/dev/null 2>&1 &&
"$SDUMC" predict --model "$T/old/m.safetensors" --data "$T/ds" --out "$T/old/p.csv" >/dev/null 2>&1 &&
"$SDUMC" train --data "$T/ds" --out "$T/new/m.safetensors" --seed 2 "${COMMON[@]}" >/dev/null 2>&1 ||
  { echo "FAIL write_failures: reference runs failed"; exit 0; }
chmod -R a+rX "$T"
OLD_FILES=(m.safetensors m.safetensors.state m.safetensors.log.jsonl m.safetensors.report.html p.csv)
size() { stat -c %s "$1"; }
pages() { echo $(( ($1 + 4095) / 4096 )); }
S_MODEL=$(size "$T/new/m.safetensors") S_STATE=$(size "$T/new/m.safetensors.state")
S_LOG=$(size "$T/new/m.safetensors.log.jsonl") S_REPORT=$(size "$T/new/m.safetensors.report.html")
S_PRED=$(size "$T/old/p.csv")

# ---- one case -------------------------------------------------------------------------------
# prepare DIR KIND: the old files in DIR (and, for the report, the complete seed-2 state to resume).
prepare() {
  local dir=$1 kind=$2
  mkdir -p "$dir"
  for f in "${OLD_FILES[@]}"; do cp "$T/old/$f" "$dir/$f"; done
  [ "$kind" = report ] && cp "$T/new/m.safetensors.state" "$dir/m.safetensors.state"
  chmod -R a+rX "$dir"
}
# The command that writes KIND into DIR (prefix: e.g. as_nobody).
command_for() {
  local dir=$1 kind=$2
  case $kind in
    model|state) echo "$SDUMC train --data $T/ds --out $dir/m.safetensors --seed 2 ${COMMON[*]}";;
    report) echo "$SDUMC train --data $T/ds --out $dir/m.safetensors --seed 2 ${COMMON[*]} --resume $dir/m.safetensors.state";;
    predictions) echo "$SDUMC predict --model $T/old/m.safetensors --data $T/ds --out $dir/p.csv";;
  esac
}
target_of() {
  case $1 in model) echo m.safetensors;; state) echo m.safetensors.state;;
    report) echo m.safetensors.report.html;; predictions) echo p.csv;; esac
}
# check NAME DIR KIND RC ERRFILE REASON [all]: rc != 0; the message names the file and the reason;
# the aimed old file (with "all": every old file) is intact; no temporary is left.
check() {
  local name=$1 dir=$2 kind=$3 rc=$4 errf=$5 reason=$6 scope=${7:-one}
  local target; target=$(target_of "$kind")
  local problems=() msg
  msg=$(grep -m1 -E "write failed|cannot (create|rename)|fsync|close failed" "$errf")
  [ "$rc" -ne 0 ] || problems+=("the command succeeded (exit 0)")
  [ -n "$msg" ] || problems+=("no write error message (stderr: $(tr '\n' ' ' <"$errf" | cut -c1-300))")
  if [ -n "$msg" ]; then
    case $msg in *"$dir/$target"*) ;; *) problems+=("message does not name $dir/$target: $msg");; esac
    case $msg in *"$reason"*) ;; *) problems+=("message does not say '$reason': $msg");; esac
  fi
  local files=("$target")
  [ "$scope" = all ] && files=("${OLD_FILES[@]}")
  for f in "${files[@]}"; do
    local ref=$T/old/$f
    [ "$kind" = report ] && [ "$f" = m.safetensors.state ] && ref=$T/new/$f
    cmp -s "$ref" "$dir/$f" || problems+=("$f changed")
  done
  local tmps; tmps=$(find "$dir" -name '*.tmp.*' | wc -l)
  [ "$tmps" -eq 0 ] || problems+=("$tmps temporaries left")
  if [ ${#problems[@]} -eq 0 ]; then
    echo "PASS write_failures: $name: $kind (old $([ "$scope" = all ] && echo files || echo file) intact; \"${msg#*: }\")"
  else
    echo "FAIL write_failures: $name: $kind: $(IFS=';'; echo "${problems[*]}")"
  fi
}

# ---- RLIMIT_FSIZE ---------------------------------------------------------------------------
# Limits in KiB (bash's ulimit -f unit): below the aimed file, above every file written before it.
kib_above() { echo $(( ($1 + 1023) / 1024 + 1 )); }
before_state=$(( S_MODEL > S_LOG ? S_MODEL : S_LOG ))
declare -A LIMIT=([model]=1 [predictions]=1 [state]=$(kib_above $before_state) [report]=$(kib_above $before_state))
declare -A SIZE=([model]=$S_MODEL [predictions]=$S_PRED [state]=$S_STATE [report]=$S_REPORT)
for kind in model state report predictions; do
  if [ $(( LIMIT[$kind] * 1024 )) -ge "${SIZE[$kind]}" ]; then
    echo "FAIL write_failures: fsize: $kind: cannot aim a limit (${LIMIT[$kind]} KiB) below its ${SIZE[$kind]} bytes"
    continue
  fi
  dir=$T/fsize-$kind
  prepare "$dir" "$kind"
  ( trap '' XFSZ; ulimit -f "${LIMIT[$kind]}"; exec $(command_for "$dir" "$kind") ) >/dev/null 2>"$dir.err"
  check fsize "$dir" "$kind" $? "$dir.err" "File too large"
done

# ---- tmpfs full -----------------------------------------------------------------------------
mnt=$T/full
mkdir -p "$mnt"
if [ $am_root -eq 1 ] && mount -t tmpfs -o size=4m,mode=0755 tmpfs "$mnt" 2>/dev/null; then
  mounts+=("$mnt")
  # Free pages left for the command: enough for every write before the aimed one, not for it.
  # A replaced file frees its old pages after the rename: the model keeps its size, but the first
  # epoch's log would be smaller than the old 10-epoch one, so the state case starts without an old
  # log; its first state (1-epoch history) has at least S_STATE - S_LOG bytes.
  pm=$(pages "$S_MODEL")
  declare -A FREE=([model]=2 [predictions]=0 [state]=$(( pm + 1 )) [report]=$(( pm + 1 )))
  declare -A NEED=([model]=$(pages "$S_MODEL") [predictions]=$(pages "$S_PRED")
                   [state]=$(pages $(( S_STATE - S_LOG ))) [report]=$(( $(pages "$S_REPORT") - 1 )))
  for kind in model state report predictions; do
    if [ "${FREE[$kind]}" -ge "${NEED[$kind]}" ]; then
      echo "FAIL write_failures: tmpfs-full: $kind: cannot aim (${FREE[$kind]} free pages, ${SIZE[$kind]} bytes)"
      continue
    fi
    dir=$mnt/$kind
    prepare "$dir" "$kind"
    [ "$kind" = state ] && rm "$dir/m.safetensors.log.jsonl"
    avail=$(df --output=avail -B4096 "$mnt" | tail -1 | tr -d ' ')
    fill=$(( avail - FREE[$kind] ))
    dd if=/dev/zero of="$mnt/filler-$kind" bs=4096 count="$fill" status=none 2>/dev/null
    $(command_for "$dir" "$kind") >/dev/null 2>"$T/full-$kind.err"
    check tmpfs-full "$dir" "$kind" $? "$T/full-$kind.err" "No space left on device"
    rm -rf "$mnt/filler-$kind" "$dir"
  done
else
  echo "SKIP write_failures: tmpfs-full (needs root and a working tmpfs mount)"
fi

# ---- permission denied on the file: sticky folder, old file owned by root -------------------
if [ $can_setpriv -eq 1 ]; then
  for kind in model state report predictions; do
    dir=$T/sticky-$kind
    prepare "$dir" "$kind"
    chown -R 65534:65534 "$dir"
    chown 0:0 "$dir/$(target_of "$kind")" "$dir"
    chmod 1777 "$dir"
    as_nobody $(command_for "$dir" "$kind") >/dev/null 2>"$T/sticky-$kind.err"
    check sticky "$dir" "$kind" $? "$T/sticky-$kind.err" "Operation not permitted"
  done
else
  echo "SKIP write_failures: sticky (needs root and setpriv to run as nobody)"
fi

# ---- folder-wide: no write permission, read-only --------------------------------------------
if [ $can_setpriv -eq 1 ] || [ $am_root -eq 0 ]; then
  run_other() { if [ $am_root -eq 1 ]; then as_nobody "$@"; else "$@"; fi; }
  for kind in model predictions; do
    dir=$T/noperm-$kind
    prepare "$dir" "$kind"
    chmod 0555 "$dir"
    run_other $(command_for "$dir" "$kind") >/dev/null 2>"$T/noperm-$kind.err"
    check no-write-permission "$dir" "$kind" $? "$T/noperm-$kind.err" "Permission denied" all
    chmod 0755 "$dir"
  done
else
  echo "SKIP write_failures: no-write-permission (root without setpriv)"
fi

ro=$T/ro
mkdir -p "$ro"
if [ $am_root -eq 1 ] && mount -t tmpfs -o size=4m,mode=0755 tmpfs "$ro" 2>/dev/null; then
  mounts+=("$ro")
  for kind in model predictions; do prepare "$ro/$kind" "$kind"; done
  if mount -o remount,ro "$ro" 2>/dev/null; then
    for kind in model predictions; do
      $(command_for "$ro/$kind" "$kind") >/dev/null 2>"$T/ro-$kind.err"
      check read-only "$ro/$kind" "$kind" $? "$T/ro-$kind.err" "Read-only file system" all
    done
  else
    echo "SKIP write_failures: read-only (remount,ro failed)"
  fi
elif [ $am_root -eq 0 ]; then
  for kind in model predictions; do
    dir=$T/ro-$kind
    prepare "$dir" "$kind"
    chmod 0555 "$dir"
    $(command_for "$dir" "$kind") >/dev/null 2>"$T/ro-$kind.err"
    check read-only "$dir" "$kind" $? "$T/ro-$kind.err" "Permission denied" all
    chmod 0755 "$dir"
  done
else
  echo "SKIP write_failures: read-only (root without a working tmpfs mount)"
fi
exit 0
