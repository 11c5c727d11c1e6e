#!/usr/bin/env bash
# The exact commands behind the board's baseline entries and its reference areas (score 0 and 1):
# every baseline agent on every CPU track, then a re-run check of each entry, then the board.
# Run from the repository root:  bash leaderboard/make_baselines.sh   (≈ 4 h on 2 cores)
set -euo pipefail
store="${1:-results/leaderboard.sqlite}"
# The project's virtual environment (make test / make demo) when there is one, else collapsebench on PATH.
collapsebench() { if [ -x .venv/bin/collapsebench ]; then .venv/bin/collapsebench "$@"; else command collapsebench "$@"; fi; }
collapsebench leaderboard baselines --track gaussian-mix --seeds 0-9 --store "$store" --no-progress
collapsebench leaderboard baselines --track gmm2d-mix --seeds 0-4 --store "$store" --no-progress
collapsebench leaderboard baselines --track gaussian-accumulate --seeds 0-9 --store "$store" --no-progress
collapsebench leaderboard baselines --track gmm2d-accumulate --seeds 0-4 --store "$store" --no-progress
collapsebench leaderboard baselines --track gaussian-fresh --seeds 0-9 --store "$store" --no-progress
collapsebench leaderboard baselines --track gmm2d-fresh --seeds 0-4 --store "$store" --no-progress
# The image tracks: 55 Digits lineages each, ≈ 2 min of one core a lineage (≈ 1 h per track on 2
# cores; digits-accumulate restores its first models from digits-mix's, see "Shared first models";
# digits-fresh fits its own, from its first draw of 650 images).
collapsebench leaderboard baselines --track digits-mix --seeds 0-4 --store "$store" --no-progress
collapsebench leaderboard baselines --track digits-accumulate --seeds 0-4 --store "$store" --no-progress
collapsebench leaderboard baselines --track digits-fresh --seeds 0-4 --store "$store" --no-progress
collapsebench leaderboard verify leaderboard/submissions/*/*.json --workers "$(nproc)"
collapsebench leaderboard build
