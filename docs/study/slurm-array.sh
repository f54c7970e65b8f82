#!/bin/bash
# The Multi30k recipe study as a Slurm array job: one array task per shard, then one merge job.
# An example (not run by nmgrad's CI). Submit from the repository root of a built checkout
# (npm ci && npm run build) on a file system every node sees:
#
#   jobid=$(sbatch --parsable docs/study/slurm-array.sh)
#   sbatch --dependency=afterany:$jobid --wrap 'npm run translate -- compare --study m30k --merge runs/study-m30k'
#
# A task that is preempted or times out can simply be resubmitted: finished cells are skipped
# (their saved configuration hash matches), an interrupted one resumes from its checkpoint.
#SBATCH --job-name=nmgrad-study
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --output=runs/slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR}"
npm run translate -- compare --study m30k --threads "${SLURM_CPUS_PER_TASK}" \
  --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" --out runs/study-m30k
