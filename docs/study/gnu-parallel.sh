#!/bin/bash
# The recipe study over GNU parallel: 4 shards on this machine, or over ssh with -S.
# Run from the repository root of a built checkout (npm ci && npm run build).
set -euo pipefail
study=${1:-m30k}
shards=${2:-4}
threads=$(( $(nproc) / shards > 0 ? $(nproc) / shards : 1 ))
seq 0 $((shards - 1)) | parallel --line-buffer -j "$shards" \
  npm run translate -- compare --study "$study" --threads "$threads" --shard {}/"$shards" --out "runs/study-$study"
npm run translate -- compare --study "$study" --merge "runs/study-$study"

# Over ssh, with each host writing its own folder (no shared file system), then merging them all:
#   seq 0 7 | parallel -S 8/host1,8/host2 --workdir /path/to/nmgrad \
#     npm run translate -- compare --study m30k --threads 1 --shard {}/8 --out runs/study-m30k-{}
#   for h in host1 host2; do rsync -a "$h:/path/to/nmgrad/runs/" runs/; done
#   npm run translate -- compare --study m30k --merge runs/study-m30k-*
