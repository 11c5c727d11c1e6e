#!/usr/bin/env bash
# The exact commands behind the toy-world numbers in the README ("Toy worlds at full budget"): real
# budgets of the v0 specs (spline flow: 1000 steps at generation 0, then 300 per generation; T = 20):
# 3 seeds for the three loops, 2 for the curation cells; the curate-bt cells also measure the
# samples' mean reward (sample_reward). About 3.5 minutes per lineage on one CPU core (flows use one
# thread), so 55 minutes in all. Usage: bash baselines/reproduce_toy.sh [STORE]
set -euo pipefail
store="${1:-results/toy.sqlite}"
run() { collapsebench run "$@" --snapshots 5 --store "$store" --no-progress; }

run Rings8-replace-v0 --policy full-synthetic --seeds 0-2
run Rings8-mix-v0 --policy lambda-mix --param lam=0.5 --seeds 0-2
run Rings8-accumulate-v0 --policy accumulate --seeds 0-2
run Rings8-mix-v0 --policy filter-likelihood --policy lambda-mix \
    --param filter-likelihood.q=0.2 --param lambda-mix.lam=0.5 --seeds 0-1
run Rings8-replace-v0 --policy curate-bt --param K=4 --param beta=2.0 --seeds 0-1 --env-param sample_reward=linear
run Rings8-mix-v0 --policy curate-bt --policy lambda-mix --param curate-bt.K=4 --param curate-bt.beta=2.0 \
    --param lambda-mix.lam=0.5 --seeds 0-1 --env-param sample_reward=linear

collapsebench plot --store "$store" --env Rings8-replace-v0 --env Rings8-mix-v0 --env Rings8-accumulate-v0 \
    --metric w2 --metric mode_coverage --metric recall --metric true_nll_samples --out results/toy-curves.png
collapsebench plot --samples --store "$store" --out results/toy-samples
