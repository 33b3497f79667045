#!/usr/bin/env bash
# e2e: the README's first command (examples/quickstart.sh) on the binaries Bazel just built.
#
#  1. a full run passes: every step's observed matrix equals `picket-control matrix`;
#  2. a second run right after it passes too (the first left nothing in the way);
#  2b. the same story with --source kubernetes (kubectl against the Kubernetes API test server,
#     `serve --kubeconfig`) passes too;
#  3. a run interrupted with SIGINT in the middle of the story exits 130 and leaves nothing.
# After each run: no network namespace of that run, the root namespace's links, iptables and
# ip6tables rules as before, none of its processes alive, its working directory gone.
#
# Needs root (network namespaces, iptables); fails loudly without it.
set -uo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "quickstart_test needs root (network namespaces and iptables); run as root"

R="${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
QUICKSTART="$R/examples/quickstart.sh"
[[ -x $QUICKSTART ]] || fail "missing $QUICKSTART"
OUT="${TEST_TMPDIR:-$(mktemp -d)}"
ARGS=(--no-install --no-build --bin-dir "$R" --quiet)
# The binaries this test owns: any live process running one of them after a run is a leftover.
OURS=()
for b in control/picket-control proxy/picket-proxy inject/picket-init inject/picket-inject; do
  OURS+=("$(readlink -f "$R/$b")")
done

root_state() {
  {
    echo "## links"; ip -o link show | sed 's/^[0-9]*: //; s/ state .*//'
    echo "## iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "## ip6tables"; ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
  }
}

# Leftovers of the quick-start run whose shell had pid $1.
check_clean() {
  local pid=$1 what=$2 p exe
  local ns
  ns=$(ip netns list | awk '{print $1}' | grep -E "^pkq-$pid-" || true)
  [[ -z $ns ]] || fail "$what: network namespaces left behind: $ns"
  diff <(echo "$BEFORE") <(root_state) >"$OUT/diff.txt" ||
    fail "$what: the root namespace changed:$(printf '\n'; cat "$OUT/diff.txt")"
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    for o in "${OURS[@]}"; do
      [[ $exe == "$o" ]] && fail "$what: process ${p#/proc/} ($exe) still running"
    done
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null |
      grep -q -e "$R/examples/lib/picket_demo.py" -e "$R/test/k8s/apiserver/fake_apiserver.py"; then
      fail "$what: demo helper ${p#/proc/} still running"
    fi
  done
  local dirs
  dirs=$(grep -l "pkq-$pid-" /tmp/picket-quickstart.*/pods.json 2>/dev/null || true)
  [[ -z $dirs ]] || fail "$what: working directory left behind: $dirs"
  echo "ok: $what left nothing behind"
}

# Starts the quick start in the background in its own process group (job control on), so that
# SIGINT reaches its trap as it would from a terminal; sets QS_PID.
set -m
start() {
  local name=$1
  shift
  "$QUICKSTART" "${ARGS[@]}" "$@" >"$OUT/$name.log" 2>&1 &
  QS_PID=$!
}

BEFORE=$(root_state)

for run in first second kubernetes; do
  t0=$SECONDS
  if [[ $run == kubernetes ]]; then start "$run" --source kubernetes; else start "$run"; fi
  wait "$QS_PID"
  rc=$?
  cat "$OUT/$run.log"
  ((rc == 0)) || fail "$run run exited $rc"
  agreed=$(grep -c 'observed == predicted' "$OUT/$run.log")
  steps=$(find "$R/examples/demo/steps" -mindepth 1 -maxdepth 1 -type d | wc -l)
  ((agreed == steps)) || fail "$run run: $agreed of $steps steps agreed with the prediction"
  check_clean "$QS_PID" "$run run"
  echo "ok: $run run passed in $((SECONDS - t0))s"
done

# Interrupt in the middle of the story, once the second step is being applied.
start interrupted
for ((i = 0; i < 600; i++)); do
  grep -q 'step 2/' "$OUT/interrupted.log" 2>/dev/null && break
  kill -0 "$QS_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q 'step 2/' "$OUT/interrupted.log" || { cat "$OUT/interrupted.log"; fail "the run never reached step 2"; }
# As Ctrl-C in a terminal does: to the whole foreground process group. (A SIGINT to the shell
# alone is lost by bash while it waits for a command substitution that exits normally.)
kill -INT -- "-$QS_PID"
wait "$QS_PID"
rc=$?
cat "$OUT/interrupted.log"
((rc == 130)) || fail "interrupted run exited $rc, want 130"
grep -q 'interrupted' "$OUT/interrupted.log" || fail "interrupted run did not say so"
check_clean "$QS_PID" "interrupted run"
echo "PASS"
