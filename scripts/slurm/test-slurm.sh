#!/usr/bin/env bash
# npm run test:slurm: the recipe study on a real, one-node Slurm cluster on this machine.
#
# Brings up munged, slurmctld and slurmd from Debian's packages (installed with apt-get when
# missing; root needed) with a minimal slurm.conf in a temp folder, then
#   1. submits docs/study/slurm-array.sh unchanged (sbatch --array=0-3, a small grid passed in
#      STUDY / STUDY_FLAGS / STUDY_OUT) while the same grid runs locally without Slurm;
#   2. cancels a task for good (scancel) in its first cell;
#   3. requeues another running task (scontrol requeue) in the middle of its second cell: the
#      task must checkpoint on SIGTERM, run again, skip its finished cell and resume the
#      interrupted one from that checkpoint; the merge job (docs/study/slurm-merge.sh) must then
#      exit 3 listing exactly the cancelled task's cells;
#   4. resubmits that one index, twice at once: the cell's lock lets only one of them train it;
#   5. merges again (exit 0) and checks every cell against the local run: same summary numbers
#      and final checkpoint bit for bit, byte-identical results.json and results.md;
# and checks the Kubernetes manifest against the API schema (scripts/k8s/check-manifest.sh).
# Every daemon it started is stopped on exit, on failure and on Ctrl-C.
#
# Environment: SLURM_TEST_STEPS (steps per cell, default 300), SLURM_TEST_TIMEOUT (seconds for
# the whole test, default 600), SLURM_TEST_KEEP=1 keeps the temp folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS
steps=${SLURM_TEST_STEPS:-300}
deadline=$((SECONDS + ${SLURM_TEST_TIMEOUT:-600}))

say() { printf '[test-slurm %4ds] %s\n' $((SECONDS - started)) "$*" >&2; }
fail() {
  say "FAIL: $*"
  exit 1
}
check() { # check DESCRIPTION COMMAND...: runs the command, fails the test with DESCRIPTION if it fails
  local what=$1
  shift
  if "$@"; then say "ok: $what"; else fail "$what"; fi
}

[ "$(id -u)" = 0 ] || fail "run as root: it installs Debian's slurm packages and runs slurmd as root"
cli=dist/examples/transformer-translate/cli.js
[ -f "$cli" ] || fail "$cli not found: build first (npm ci && npm run build)"

# ---- packages ---------------------------------------------------------------------------
policy_added=0
missing=()
command -v munged >/dev/null || missing+=(munge)
command -v slurmctld >/dev/null || missing+=(slurmctld)
command -v slurmd >/dev/null || missing+=(slurmd)
command -v sbatch >/dev/null || missing+=(slurm-client)

tmp=""
daemon_pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$tmp" ] && [ -f "$tmp/slurm.conf" ] && [ -n "${SLURMCTLD_PID:-}" ] && kill -0 "$SLURMCTLD_PID" 2>/dev/null; then
    scancel --quiet --user=root 2>/dev/null # only this cluster's jobs: SLURM_CONF points at it
    for _ in $(seq 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  local pid
  for pid in "${daemon_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 20); do
    local alive=0
    for pid in "${daemon_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.25
  done
  for pid in "${daemon_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  # slurmstepd and job processes outlive slurmd: find ours by the SLURM_CONF they inherited.
  if [ -n "$tmp" ]; then
    for env in /proc/[0-9]*/environ; do
      pid=${env#/proc/}
      pid=${pid%/environ}
      [ "$pid" = $$ ] && continue
      if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx "SLURM_CONF=$tmp/slurm.conf"; then kill -KILL "$pid" 2>/dev/null; fi
    done
  fi
  [ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ -n "$tmp" ]; then
    if [ $rc != 0 ]; then
      for f in "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log; do [ -f "$f" ] && { echo "--- last lines of $f"; tail -15 "$f"; }; done
    fi
    if [ "${SLURM_TEST_KEEP:-0}" = 1 ] || [ $rc != 0 ]; then echo "test-slurm: kept $tmp"; else rm -rf "$tmp"; fi
  fi
  say "$([ $rc = 0 ] && echo PASSED || echo "FAILED (exit $rc)") in $((SECONDS - started)) s; daemons stopped"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  # The packages' init scripts would start system-wide daemons; this test runs its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  # A machine that cannot install them (no package mirror) skips the test with exit 77: the
  # environment, not nmgrad, is missing something. .ci/run reports that as skipped.
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    [ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d && policy_added=0
    say "SKIPPED: cannot install ${missing[*]} with apt-get"
    trap - EXIT
    exit 77
  fi
  [ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d && policy_added=0
fi

# ---- the cluster ------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/nmgrad-slurm.XXXXXX)
chmod 755 "$tmp"
mkdir -p "$tmp"/{munge,state,spool,log,runs,local,jobs}
chmod 711 "$tmp/munge"
export SLURM_CONF=$tmp/slurm.conf
node_name=$(hostname -s)
read -r ctld_port slurmd_port < <(node -e '
  const net = require("net"); const ports = [];
  const next = () => { const s = net.createServer().listen(0, "127.0.0.1", () => { ports.push(s.address().port); s.close(); ports.length < 2 ? next() : console.log(ports.join(" ")); }); };
  next();')
cat >"$SLURM_CONF" <<EOF
ClusterName=nmgradtest
SlurmctldHost=${node_name}(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$node_name NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munged --foreground --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/log/munged.log" --seed-file="$tmp/munge/munged.seed" >"$tmp/log/munged.stdout" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 40); do munge -n -S "$tmp/munge/munge.socket" 2>/dev/null | unmunge -S "$tmp/munge/munge.socket" >/dev/null 2>&1 && break; sleep 0.25; done
munge -n -S "$tmp/munge/munge.socket" | unmunge -S "$tmp/munge/munge.socket" >/dev/null || fail "munged did not start (see $tmp/log/munged.log)"
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/log/slurmctld.stdout" 2>&1 &
SLURMCTLD_PID=$!
daemon_pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$node_name" >"$tmp/log/slurmd.stdout" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 120); do [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] && break; sleep 0.5; done
[ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] || fail "the node did not come up idle: $(sinfo -N 2>&1 | tail -1)"
say "one-node cluster up: $(sinfo -h -N -o '%N %c CPUs %T') ($(sinfo -V)), state in $tmp"

# ---- the grid ---------------------------------------------------------------------------
# dense + SR-STE + PMD at 1:8 × seeds 1, 2 (6 cells) in 4 shards: two of one cell, two of two.
export STUDY=tiny
export STUDY_OUT=$tmp/runs
export STUDY_FLAGS="--recipes srste;pmd --nm 1:8 --seeds 1,2 --steps $steps --d-model 16 --ffn 32 --heads 2 --layers 1 --merges 50 --batch-tokens 300 --eval-sentences 10"
export STUDY_THREADS=1
unset STUDY_SHARDS STUDY_SHARD
read -r -a grid_flags <<<"$STUDY_FLAGS"
shards=4
cells_of() { node "$cli" compare --study "$STUDY" "${grid_flags[@]}" --list --shard "$1/$shards" --json --out "$STUDY_OUT" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s.trim().split("\n").map(l=>JSON.parse(l).name).join(" ")))'; }
declare -A shard_cells
for i in $(seq 0 $((shards - 1))); do shard_cells[$i]=$(cells_of "$i"); done
for i in $(seq 0 $((shards - 1))); do say "shard $i/$shards: ${shard_cells[$i]}"; done
# Requeue a two-cell shard in its second cell; cancel the other two-cell shard in its first.
requeued="" cancelled=""
for i in $(seq 0 $((shards - 1))); do
  n=$(wc -w <<<"${shard_cells[$i]}")
  if [ "$n" = 2 ] && [ -z "$requeued" ]; then requeued=$i; elif [ "$n" = 2 ] && [ -z "$cancelled" ]; then cancelled=$i; fi
done
[ -n "$requeued" ] && [ -n "$cancelled" ] || fail "expected two shards of two cells: ${shard_cells[*]}"

say "the same grid locally, without Slurm (reference)"
node "$cli" compare --study "$STUDY" "${grid_flags[@]}" --threads 1 --out "$tmp/local" >"$tmp/log/local.out" 2>&1 &
local_pid=$!

# ---- 1. submit the documented array script unchanged --------------------------------------
# Resources sized for this machine on the command line (they override the #SBATCH lines).
sbatch_res=(--cpus-per-task=1 --mem=100M --time=30:00)
jobid=$(cd "$root" && sbatch --parsable --array=0-$((shards - 1)) "${sbatch_res[@]}" --output="$tmp/jobs/slurm-%A_%a.out" docs/study/slurm-array.sh)
say "submitted: sbatch --array=0-$((shards - 1)) docs/study/slurm-array.sh → job $jobid"

# A task's log as plain lines: with stdout not a terminal the CLI writes JSON lines, its human
# lines as {"log": "..."} records.
plain() { sed -E 's/^\{"log":"(.*)"\}$/\1/' "$@"; }
task_state() { scontrol -o show job "${jobid}_$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
progress() { # progress CELL: the last logged step of a cell in training (0 if none), "done" when finished
  local d=$STUDY_OUT/$1
  if [ -f "$d/summary.json" ]; then echo done; return; fi
  if [ -s "$d/metrics.jsonl" ]; then tail -1 "$d/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2; else echo 0; fi
}
wait_until() { # wait_until DESCRIPTION COMMAND...: polls every 0.2 s until the command succeeds
  local what=$1
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $what"
    sleep 0.2
  done
}
in_training() { local p; p=$(progress "$1"); [ "$p" != done ] && [ "$p" -gt 0 ]; }
running_in() { # running_in TASK CELL: the task runs and the cell is in training; fails the test if the cell is already done
  [ "$(progress "$2")" != done ] || fail "$2 finished before it could be interrupted (raise SLURM_TEST_STEPS)"
  [ "$(task_state "$1")" = RUNNING ] && in_training "$2"
}

# ---- 2. cancel a task for good, while it trains its first cell -----------------------------
# (First: the two two-cell tasks start together, and the requeue waits for a second cell.)
read -r cx_first _ <<<"${shard_cells[$cancelled]}"
wait_until "task $cancelled training its first cell" running_in "$cancelled" "$cx_first"
say "scancel ${jobid}_$cancelled at step $(progress "$cx_first") of $cx_first"
scancel "${jobid}_$cancelled"

# ---- 3. requeue: a running task, in the middle of its second cell -------------------------
read -r rq_first rq_second <<<"${shard_cells[$requeued]}"
wait_until "task $requeued training its second cell" running_in "$requeued" "$rq_second"
check "task $requeued finished its first cell ($rq_first) before the requeue" test -f "$STUDY_OUT/$rq_first/summary.json"
say "scontrol requeue ${jobid}_$requeued at step $(progress "$rq_second") of $rq_second"
scontrol requeue "${jobid}_$requeued"
# Slurm keeps a requeued job pending for about two minutes (Reason=BeginTime: its eligible time
# is pushed back); on a cluster that is the price of a requeue, here it is waiting time only.
pending() { [ "$(task_state "$1")" = PENDING ]; }
wait_until "task $requeued pending again" pending "$requeued"
say "task $requeued is $(scontrol -o show job "${jobid}_$requeued" | grep -o 'JobState=[A-Z]* Reason=[A-Za-z]*') until $(scontrol -o show job "${jobid}_$requeued" | grep -o 'EligibleTime=[^ ]*' | cut -d= -f2); scontrol update StartTime=now"
# slurmd refuses a relaunch whose credential is not newer (in whole seconds) than the revocation
# of the requeued run's ("Job credential revoked"): start it a few seconds on, not at once.
sleep 3
scontrol update JobId="${jobid}_$requeued" StartTime=now

finished() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }
wait_until "array job $jobid to finish" finished "$jobid"
say "array job $jobid finished: $(for i in $(seq 0 $((shards - 1))); do printf '%s=%s ' "$i" "$(task_state "$i")"; done)"
for i in $(seq 0 $((shards - 1))); do
  [ "$i" = "$cancelled" ] && continue
  check "task $i completed with exit 0" grep -q 'JobState=COMPLETED .*ExitCode=0:0' <(scontrol -o show job "${jobid}_$i")
done
check "task $cancelled was cancelled" test "$(task_state "$cancelled")" = CANCELLED

rq_log=$tmp/jobs/slurm-${jobid}_$requeued.out
check "the requeued task ran twice (Restarts=1)" grep -q 'Restarts=1' <(scontrol -o show job "${jobid}_$requeued")
saved=$(plain "$rq_log" | grep -o "interrupted: checkpoint saved at step [0-9]*" | head -1 | grep -o '[0-9]*$' || true)
check "the requeued task checkpointed $rq_second on SIGTERM (step ${saved:-none})" test -n "$saved"
check "its rerun skipped the finished cell $rq_first" grep -q "$rq_first: already done with this configuration" <(plain "$rq_log")
check "its rerun resumed $rq_second from that checkpoint (step $saved of $steps)" grep -q "resuming $STUDY_OUT/$rq_second at step $saved\$" <(plain "$rq_log")
check "the checkpoint was mid-run (0 < $saved < $steps)" test "$saved" -gt 0 -a "$saved" -lt "$steps"
check "the cancelled task checkpointed on SIGTERM too" grep -q "interrupted: checkpoint saved at step" <(plain "$tmp/jobs/slurm-${jobid}_$cancelled.out")
check "no lock is left behind" test -z "$(find "$STUDY_OUT" -maxdepth 1 -name '*.lock*')"

# ---- the merge job: exit 3, listing exactly the cancelled task's cells ---------------------
merge_job() { # merge_job DEPENDENCY: submits docs/study/slurm-merge.sh, waits, prints its exit code
  local id
  id=$(cd "$root" && sbatch --parsable --dependency="$1" --mem=100M --output="$tmp/jobs/slurm-merge-%j.out" docs/study/slurm-merge.sh)
  wait_until "merge job $id" finished "$id"
  scontrol -o show job "$id" | grep -o 'ExitCode=[0-9]*' | cut -d= -f2
  echo "$id" >"$tmp/last-merge"
}
code=$(merge_job "afterany:$jobid")
merge_out=$tmp/jobs/slurm-merge-$(cat "$tmp/last-merge").out
check "the merge job exited 3 with a cancelled shard (exit $code)" test "$code" = 3
missing=$(grep -o 'cells not done: .*' "$merge_out" | sed 's/cells not done: //')
check "it listed exactly the cancelled shard's cells ($missing)" test "$missing" = "$(tr ' ' '\n' <<<"${shard_cells[$cancelled]}" | paste -sd, | sed 's/,/, /g')"

# ---- 4. resubmit that one index, twice at once: the lock lets one of them train -----------
again=$(cd "$root" && STUDY_SHARDS=$shards sbatch --parsable --array="$cancelled" "${sbatch_res[@]}" --output="$tmp/jobs/slurm-%A_%a.out" docs/study/slurm-array.sh)
dup=$(cd "$root" && STUDY_SHARDS=$shards sbatch --parsable --array="$cancelled" "${sbatch_res[@]}" --output="$tmp/jobs/slurm-%A_%a.out" docs/study/slurm-array.sh)
say "resubmitted index $cancelled: STUDY_SHARDS=$shards sbatch --array=$cancelled docs/study/slurm-array.sh → jobs $again and $dup"
wait_until "jobs $again and $dup" finished "$again,$dup"
logs=("$tmp/jobs/slurm-${again}_$cancelled.out" "$tmp/jobs/slurm-${dup}_$cancelled.out")
for cell in ${shard_cells[$cancelled]}; do
  n=$(plain "${logs[@]}" | grep -c "^== $cell ")
  check "$cell was trained by exactly one of the two ($n)" test "$n" = 1
done
check "the cancelled cell $cx_first resumed from the cancelled task's checkpoint" grep -q "resuming $STUDY_OUT/$cx_first at step [1-9]" <(plain "${logs[@]}")
for j in "$again" "$dup"; do
  out=$tmp/jobs/slurm-${j}_$cancelled.out
  ec=$(scontrol -o show job "$j" | grep -o 'ExitCode=[0-9]*' | cut -d= -f2)
  if plain "$out" | grep -q ": skipped, another task is training it"; then
    say "job $j skipped locked cells: $(plain "$out" | grep -o '^[^ ]*: skipped, another task is training it: [^ ]*' | sed 's/: skipped, another task is training it: / held by /' | paste -sd, | sed 's/,/, /g')"
    check "job $j exited 0 or, with a cell still held at its end, 4 (exit $ec)" test "$ec" = 0 -o "$ec" = 4
  else
    check "job $j exited 0 (exit $ec)" test "$ec" = 0
  fi
done

# ---- 5. the complete merge, against the grid run locally ------------------------------------
code=$(merge_job "afterany:$again:$dup")
check "the merge job exited 0 once every cell is done (exit $code)" test "$code" = 0
say "waiting for the local reference run"
wait "$local_pid" || fail "the local run of the grid failed: $(tail -5 "$tmp/log/local.out")"
say "every cell and the report, Slurm (with requeue, cancel, resubmission) against local:"
check "Slurm's cells and merged report equal the local run's, bit for bit" node scripts/slurm/same-cells.mjs "$tmp/local" "$STUDY_OUT"

# ---- the Kubernetes manifest ---------------------------------------------------------------
check "the Kubernetes manifest's schema check ran (or said why not)" scripts/k8s/check-manifest.sh
