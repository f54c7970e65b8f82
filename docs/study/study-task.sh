#!/bin/bash
# One task of a recipe study, the same on every scheduler: the Slurm array script
# (slurm-array.sh) and the Kubernetes indexed Job (k8s-indexed-job.yaml) both run this from the
# repository root of a built checkout (npm ci && npm run build).
#
#   docs/study/study-task.sh          train this task's shard
#   docs/study/study-task.sh merge    merge every shard's cells into STUDY_OUT (exit 3 if any is missing)
#
# The shard index comes from the scheduler: SLURM_ARRAY_TASK_ID (Slurm array job) or
# JOB_COMPLETION_INDEX (Kubernetes indexed Job), else STUDY_SHARD (by hand). Everything else
# from the environment (Slurm's sbatch passes the submitting shell's environment on):
#   STUDY           study preset (default m30k)
#   STUDY_SHARDS    shard count; defaults to SLURM_ARRAY_TASK_COUNT, so set it when resubmitting
#                   single indices (sbatch --array=3 is an array of one task)
#   STUDY_OUT       results folder shared by all tasks (default runs/study-$STUDY)
#   STUDY_THREADS   threads per task (default SLURM_CPUS_PER_TASK, else all cores)
#   STUDY_FLAGS     more compare flags, split on spaces (e.g. "--data /data/multi30k")
#   STUDY_JOB_UID   Kubernetes only: the Job's uid (see the manifest), part of the task's identity
#
# Each cell is trained under its lock (<cell>.lock in STUDY_OUT): two tasks never write the same
# cell. A task's identity (STUDY_TASK_ID: the Slurm array task, or the Job's uid and index)
# survives a requeue or a pod restart, so a restarted task takes its own lock back at once.
# On SIGTERM (preemption, requeue, scancel, time limit) the cell in training checkpoints at the
# next step boundary and the task exits 143; the rerun skips finished cells and resumes that one.
set -euo pipefail
set -f # STUDY_FLAGS is split on spaces, never globbed

study=${STUDY:-m30k}
out=${STUDY_OUT:-runs/study-$study}
read -r -a flags <<< "${STUDY_FLAGS:-}"
cli=dist/examples/transformer-translate/cli.js
[ -f "$cli" ] || { echo "study-task: $cli not found: run from the root of a built checkout (npm ci && npm run build)" >&2; exit 2; }

if [ "${1:-}" = merge ]; then
  exec node "$cli" compare --study "$study" "${flags[@]}" --merge "$out" --out "$out"
fi

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  index=$SLURM_ARRAY_TASK_ID
  count=${STUDY_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-}}
  export STUDY_TASK_ID="slurm:${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
elif [ -n "${JOB_COMPLETION_INDEX:-}" ]; then
  index=$JOB_COMPLETION_INDEX
  count=${STUDY_SHARDS:-}
  export STUDY_TASK_ID="k8s:${STUDY_JOB_UID:-$(hostname)}/${JOB_COMPLETION_INDEX}"
else
  index=${STUDY_SHARD:-}
  count=${STUDY_SHARDS:-}
fi
if [ -z "$index" ] || [ -z "$count" ] || [ "$index" -ge "$count" ]; then
  echo "study-task: shard '${index}' of '${count}': set STUDY_SHARDS to the shard count (and STUDY_SHARD outside Slurm and Kubernetes)" >&2
  exit 2
fi
threads=${STUDY_THREADS:-${SLURM_CPUS_PER_TASK:-$(nproc)}}

echo "study-task: $study shard $index/$count on $(hostname) (${STUDY_TASK_ID:-by hand}), $threads threads, results in $out"
# exec: node receives the scheduler's signals itself (and is PID 1 in a container).
exec node "$cli" compare --study "$study" "${flags[@]}" --threads "$threads" --shard "$index/$count" --out "$out"
