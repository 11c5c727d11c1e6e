#!/usr/bin/env bash
# The exact commands behind the Digits numbers in the README ("Image worlds"): the v0 specs' budgets
# (mlp-flow-matching: 300k images for generation 0, then 40k per generation; T = 20), 2 seeds per
# loop. About 2 minutes per lineage on one CPU core, 16 minutes in all.
# Usage: bash baselines/reproduce_digits.sh [STORE]
set -euo pipefail
store="${1:-results/digits.sqlite}"
run() { collapsebench run "$@" --seeds 0-1 --snapshots 5 --store "$store" --no-progress; }

run Digits-replace-v0 --policy full-synthetic
run Digits-mix-v0 --policy lambda-mix --param lam=1.0
run Digits-mix-v0 --policy lambda-mix --param lam=0.5
run Digits-accumulate-v0 --policy accumulate

collapsebench plot --store "$store" --metric fd --metric recall --metric precision --out results/digits-curves.png
collapsebench plot --samples --store "$store" --out results/digits-samples
