#!/bin/bash
# The Multi30k recipe study as a Slurm array job: one array task per shard, then one merge job.
# Submit from the repository root of a built checkout (npm ci && npm run build; mkdir -p runs) on a file
# system every node sees; every task runs docs/study/study-task.sh (the Kubernetes Job runs the
# same entry point), which reads SLURM_ARRAY_TASK_ID and the STUDY* variables (see there):
#
#   jobid=$(sbatch --parsable docs/study/slurm-array.sh)
#   sbatch --dependency=afterany:$jobid docs/study/slurm-merge.sh        # exit 3: cells missing
#
# Preemption, requeue (scontrol requeue), scancel and the time limit all end a task with SIGTERM
# and KillWait seconds of grace: the cell in training checkpoints at its next step boundary.
# A requeued task (--requeue) reruns with the same SLURM_ARRAY_TASK_ID: finished cells are
# skipped, the interrupted one resumes from its checkpoint, bit-identically. A task cancelled
# for good is resubmitted as one index, with the shard count given explicitly:
#
#   STUDY_SHARDS=8 sbatch --array=3 docs/study/slurm-array.sh
#
# Tested end to end on a one-node Slurm cluster by `npm run test:slurm` (scripts/test-slurm.sh),
# with a small grid passed through STUDY, STUDY_FLAGS and STUDY_OUT.
#SBATCH --job-name=nmgrad-study
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=runs/slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR}"
exec docs/study/study-task.sh
