#!/bin/bash
# The merge of a study's shards as a Slurm job, submitted to run after the array job:
#   sbatch --dependency=afterany:$jobid docs/study/slurm-merge.sh
# Its exit status is compare --merge's: 0 every cell done, 3 cells missing (listed in its output).
#SBATCH --job-name=nmgrad-study-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=1:00:00
#SBATCH --open-mode=append
#SBATCH --output=runs/slurm-merge-%j.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR}"
exec docs/study/study-task.sh merge
