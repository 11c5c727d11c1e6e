"""Exact, vectorized simulation of 1-D Gaussian lineages from sufficient statistics.

The sample-based env draws n points per generation and refits; but a Gaussian refit only sees each
group's mean and scatter, whose laws are known: for m draws of N(μ, σ²), the mean is N(μ, σ²/m) and
the scatter m·v is σ²·χ²_{m−1}, independently. Combining the groups' statistics exactly as the weighted
estimator of the ``gaussian`` model does gives lineages *equal in distribution* to the sample path at
O(1) per generation per lineage, vectorized over lineages.

Each loop is the sample path of one (env, policy) pair:

======================  ======================================  =================================
``loop``                sample path                             training weights
======================  ======================================  =================================
``"replace"``           ``Gaussian-replace-v0`` + full-synthetic the previous generation only
``"mix"`` (``lam``)     ``Gaussian-mix-v0`` + lambda-mix(lam)    fixed real set : synthetic = 1 : λ
``"fresh"`` (``lam``)   ``Gaussian-fresh-v0`` + lambda-mix(lam)  a new real draw : synthetic = 1 : λ
``"accumulate"``        ``Gaussian-accumulate-v0`` + accumulate  uniform over everything so far
======================  ======================================  =================================

``gaussian_lineages(env_id, policy, n_lineages)`` picks the loop from an env id and a baseline policy
and takes the world (μ, σ, n_real, n_synthetic, T, the estimator) from the env's spec, as ``cb.make``
and ``cb.evaluate`` would; ``simulate_gaussian_lineages`` takes the numbers directly. The mix and fresh
loops' second moments also have closed forms (``collapsebench.envs.gaussian_theory``).

Speed: the normal and χ² draws are nearly all the cost, so lineages are cut into blocks of
``LINEAGES_PER_STREAM``, each with its own random stream, and threads share the blocks (numpy's
generators and ufuncs release the GIL). A result depends on ``seed`` only, never on ``workers``.

(gymnasium's vector-env interface does not fit: its actions are per-item weights over a pool, and
this path has no items, only statistics; the loop and λ play the part of the policy.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from collapsebench.checks import flag, integer, number_in, optional_integer
from collapsebench.envs.gaussian import GaussianEnv
from collapsebench.envs.gaussian_theory import check_world, mix_masses
from collapsebench.executors import available_cores
from collapsebench.metrics.tails import TAIL_FRACTION, check_tail_fraction
from collapsebench.models import check_temperature, make_model
from collapsebench.policies import make_policy
from collapsebench.registration import list_envs, spec, with_model_settings
from collapsebench.store import parse_canonical_json

LINEAGES_PER_STREAM = 1000
GENERATIONS_PER_DRAW = 16  # a thread's draw buffers (16 generations × its blocks) stay in cache
_DOUBLES_PER_PAGE = 512  # 4 KiB


@dataclass(frozen=True)
class GaussianLineages:
    """Fitted parameters of every lineage at the kept generations (by default every one, 0..T)."""

    mean: np.ndarray  # (kept generations, n_lineages) fitted mean μ̂_t
    std: np.ndarray  # (kept generations, n_lineages) the model's std τ·σ̂_t (σ̂_t fitted, τ the temperature)
    true_mean: float
    true_std: float
    generations: np.ndarray  # (kept generations,) the generation t of each row, increasing

    @property
    def std_ratio(self) -> np.ndarray:
        """σ̂_t / σ, the sample path's ``std_ratio`` (exact there too, from the model's covariance)."""
        return self.std / self.true_std

    @property
    def w2_to_truth(self) -> np.ndarray:
        """Exact W2 between N(μ̂_t, σ̂_t²) and the real N(μ, σ²): sqrt((μ̂ − μ)² + (σ̂ − σ)²)."""
        return np.sqrt((self.mean - self.true_mean) ** 2 + (self.std - self.true_std) ** 2)

    def tail_mass(self, tail: float = TAIL_FRACTION) -> np.ndarray:
        """Exact ``tail_mass`` of each fitted N(μ̂_t, σ̂_t²): its mass beyond the real N(μ, σ²)'s outer
        ``tail`` (|x − μ| > z·σ, z the standard normal's 1 − tail/2 quantile), over ``tail``; the
        population value of the env's metric, which estimates it from the test split and n_eval draws."""
        check_tail_fraction(tail)
        edge = special.ndtri(1.0 - tail / 2.0) * self.true_std
        upper = special.ndtr((self.mean - self.true_mean - edge) / self.std)  # P(x > μ + zσ)
        lower = special.ndtr((self.true_mean - edge - self.mean) / self.std)  # P(x < μ − zσ)
        return (upper + lower) / tail

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows: lineage, generation, metric (std_ratio, w2_to_truth, tail_mass), value."""
        index = pd.MultiIndex.from_product(
            [self.generations, range(self.mean.shape[1])], names=["generation", "lineage"]
        )
        frame = pd.DataFrame(
            {
                "std_ratio": self.std_ratio.ravel(),
                "w2_to_truth": self.w2_to_truth.ravel(),
                "tail_mass": self.tail_mass().ravel(),
            },
            index=index,
        )
        return frame.reset_index().melt(["generation", "lineage"], var_name="metric", value_name="value")


# (pool dynamics, baseline policy) → (loop, λ): λ from lambda-mix's ``lam``, or fixed by the policy.
EXACT_AGENTS: dict[tuple[str, str], tuple[str, float | None]] = {
    ("replace", "full-synthetic"): ("replace", None),
    ("mix", "lambda-mix"): ("mix", None),
    ("mix", "full-synthetic"): ("mix", float("inf")),
    ("mix", "real-only"): ("mix", 0.0),
    ("fresh", "lambda-mix"): ("fresh", None),
    ("fresh", "full-synthetic"): ("fresh", float("inf")),
    ("fresh", "real-only"): ("fresh", 0.0),
    ("accumulate", "accumulate"): ("accumulate", None),
}
# The env settings that shape the fitted parameters; the rest (n_test, n_eval, metrics, ...) only
# change how a generation is scored, which the exact path does not do.
WORLD_SETTINGS = ("dynamics", "mean", "std", "n_real", "n_synthetic", "generations", "model_kwargs")
_GAUSSIAN_ENTRY_POINT = f"{GaussianEnv.__module__}:{GaussianEnv.__qualname__}"  # as the catalog registers it


def gaussian_lineages(
    env_id: str,
    policy: str,
    n_lineages: int,
    policy_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    workers: int | None = None,
    kept_generations: Iterable[int] | None = None,
    **env_kwargs: Any,
) -> GaussianLineages:
    """``n_lineages`` lineages of ``env_id`` under the baseline ``policy``, simulated exactly: equal in
    distribution to the fitted models of ``cb.evaluate(env_id, policy, policy_kwargs, ...)``. The world
    comes from the env's spec; ``env_kwargs`` override the settings in ``WORLD_SETTINGS`` as they do
    in ``cb.make`` (``model_kwargs`` adjust the spec's). Supported
    (dynamics, policy) pairs: ``EXACT_AGENTS``; the Gaussian's ``unbiased`` and ``temperature`` come
    from ``model_kwargs``. ``kept_generations``: as in ``simulate_gaussian_lineages``."""
    env_spec = spec(env_id)
    ignored = sorted(set(env_kwargs) - set(WORLD_SETTINGS))
    if ignored:
        raise ValueError(
            f"the exact path takes {', '.join(WORLD_SETTINGS)}, not {', '.join(ignored)}: it simulates "
            "the Gaussian MLE's fitted parameters, with no items to score"
        )
    settings = {**env_spec.kwargs, **with_model_settings(env_spec.kwargs, env_kwargs)}
    agent = make_policy(policy, **(policy_kwargs or {}))
    dynamics = settings["dynamics"]
    refusal = _why_not_exact(env_id, settings["model"], dynamics, agent.name, agent.label)
    if refusal is not None:
        raise ValueError(refusal)
    loop, lam = EXACT_AGENTS[dynamics, agent.name]
    model = make_model("gaussian", **(settings["model_kwargs"] or {}))
    return simulate_gaussian_lineages(
        n_lineages,
        int(settings["generations"]),
        loop,
        lam=float(agent.params.get("lam", 1.0)) if lam is None else lam,
        n_real=settings["n_real"],
        n_synthetic=settings["n_synthetic"],
        mean=settings["mean"],
        std=settings["std"],
        unbiased=model.unbiased,
        temperature=model.temperature,
        seed=seed,
        workers=workers,
        kept_generations=kept_generations,
    )


def _why_not_exact(env_id: str, model: str, dynamics: str, policy: str, policy_label: str) -> str | None:
    """Why the exact path cannot simulate ``policy`` with ``model`` on ``env_id``'s world with these
    pool ``dynamics``, or None where it can."""
    if spec(env_id).entry_point != _GAUSSIAN_ENTRY_POINT:
        return f"the exact path covers the 1-D Gaussian worlds (Gaussian-<dynamics>-v0), not {env_id!r}"
    if model != "gaussian":
        return f"the exact path refits the 'gaussian' model; {env_id} is set to {model!r}"
    if (dynamics, policy) not in EXACT_AGENTS:
        supported = ", ".join(f"{name} on {pool}" for pool, name in EXACT_AGENTS)
        return f"no exact path for {policy_label} on {dynamics} dynamics; there is one for: {supported}"
    return None


# A run's recorded env config holds the world settings but the model's; those are its model_params.
_WORLD_CONFIG = tuple(setting for setting in WORLD_SETTINGS if setting != "model_kwargs")


def expected_std_ratio(runs: pd.DataFrame, n_lineages: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """The expected ``std_ratio`` at generations 0..T of each distinct world and agent among ``runs``
    (rows of the store's runs table) that the exact path covers: a 1-D Gaussian world, the
    ``gaussian`` model and a pair of ``EXACT_AGENTS``; the other runs are left out. The mean of
    ``n_lineages`` exact lineages, with ``ci95`` (1.96 Monte Carlo standard errors). Rows: the runs'
    env_id, model, model_params, policy, params (the policy's) and any ``env_settings``, then
    generation, metric, value, ci95, lineages: the results' columns, so that they plot beside them."""
    agent = ["env_id", "model", "model_params", "policy", "policy_params"]
    extra = ["env_settings"] if "env_settings" in runs else []
    registered = set(list_envs())  # a run of a plugin's env not imported here is simply not covered
    curves = []
    for key, _ in runs.groupby([*agent, "env_config", *extra], sort=False, dropna=False):
        run = dict(zip([*agent, "env_config", *extra], key, strict=True))
        config = parse_canonical_json(run["env_config"])
        if run["env_id"] not in registered or _why_not_exact(
            run["env_id"], run["model"], config.get("dynamics"), run["policy"], run["policy"]
        ):
            continue
        lineages = gaussian_lineages(
            run["env_id"],
            run["policy"],
            n_lineages,
            parse_canonical_json(run["policy_params"]),
            seed=seed,
            model_kwargs=parse_canonical_json(run["model_params"]),
            **{setting: config[setting] for setting in _WORLD_CONFIG},
        )
        ratio = lineages.std_ratio
        curves.append(
            pd.DataFrame(
                {
                    **{column: run[column] for column in agent if column != "policy_params"},
                    "params": run["policy_params"],
                    **{column: run[column] for column in extra},
                    "generation": lineages.generations,
                    "metric": "std_ratio",
                    "value": ratio.mean(axis=1),
                    "ci95": 1.96 * ratio.std(axis=1, ddof=1) / np.sqrt(n_lineages),
                    "lineages": n_lineages,
                }
            )
        )
    if not curves:
        columns = ["env_id", "model", "model_params", "policy", "params", *extra, "generation", "metric"]
        return pd.DataFrame(columns=[*columns, "value", "ci95", "lineages"])
    return pd.concat(curves, ignore_index=True)


def simulate_gaussian_lineages(
    n_lineages: int,
    generations: int,
    loop: str = "mix",
    lam: float = 1.0,
    n_real: int = 100,
    n_synthetic: int | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    unbiased: bool = True,
    seed: int = 0,
    workers: int | None = None,
    temperature: float = 1.0,
    kept_generations: Iterable[int] | None = None,
) -> GaussianLineages:
    """Simulate ``n_lineages`` independent lineages for generations 0..``generations`` (see module doc)
    on ``workers`` threads (default: one per available core). Each fit samples N(μ̂, (τ·σ̂)²) for the
    ``temperature`` τ, as the ``gaussian`` model does.

    ``kept_generations``: the generations whose fits are returned (default: every one). The result
    holds 16 bytes per lineage and kept generation (every generation of 10,000 × 1,000: 160 MB);
    keeping fewer leaves every kept value the same, bit for bit."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {tuple(LOOPS)}, got {loop!r}")
    n, m = check_world(lam, n_real, n_synthetic)
    n_lineages, generations = integer("n_lineages", n_lineages, 1), integer("generations", generations, 0)
    workers = optional_integer("workers", workers, 1)  # None: one per core
    mean, std = number_in("mean", mean, "(-inf, inf)"), number_in("std", std, "(0, inf)")
    unbiased, temperature = flag("unbiased", unbiased), check_temperature(temperature)
    kept = _kept_generations(kept_generations, generations)
    n_blocks = -(-n_lineages // LINEAGES_PER_STREAM)
    shape = (len(kept), n_blocks * LINEAGES_PER_STREAM)
    row_of = np.full(generations + 1, -1)  # generation → its row in the result; -1: not kept
    row_of[kept] = np.arange(len(kept))
    simulation = _Simulation(
        LOOPS[loop], lam, n, m, mean, std, unbiased, temperature, row_of, np.empty(shape), np.empty(shape)
    )
    seeds = np.random.SeedSequence(seed).spawn(n_blocks)
    streams = [np.random.Generator(np.random.SFC64(block_seed)) for block_seed in seeds]
    shares = np.array_split(
        np.arange(n_blocks), min(n_blocks, available_cores() if workers is None else workers)
    )
    with ThreadPoolExecutor(len(shares)) as threads:
        # Two phases: every page is touched before any thread writes a result into it.
        touches = [threads.submit(simulation.touch, part, len(shares)) for part in range(len(shares))]
        for job in touches:
            job.result()
        for job in [threads.submit(simulation.run, streams[s[0] : s[-1] + 1], int(s[0])) for s in shares]:
            job.result()
    return GaussianLineages(
        simulation.means[:, :n_lineages], simulation.stds[:, :n_lineages], mean, std, kept
    )


def _kept_generations(kept: Iterable[int] | None, generations: int) -> np.ndarray:
    """The generations to keep, increasing and without repeats; every one, 0..T, for None."""
    if kept is None:
        return np.arange(generations + 1)
    if isinstance(kept, str) or not isinstance(kept, Iterable):
        raise ValueError(f"kept_generations must be generations in 0..{generations}, got {kept!r}")
    chosen = [integer("each kept generation", generation, 0) for generation in kept]
    if not chosen or max(chosen) > generations:
        raise ValueError(
            f"kept_generations must be one or more generations in 0..{generations}, got {chosen!r}"
        )
    return np.unique(chosen)


class _Fit(NamedTuple):
    """Fitted mean and std of a set of lineages at one generation (views into the result)."""

    mean: np.ndarray
    std: np.ndarray


class _Group(NamedTuple):
    """Mean and biased within-group variance of a group of draws, one per lineage."""

    mean: np.ndarray
    var: np.ndarray


@dataclass(frozen=True)
class _Simulation:
    """One call's numbers and result arrays; ``run`` fills the columns of consecutive blocks."""

    loop: type[_Loop]
    lam: float
    n: int  # real items per generation
    m: int  # synthetic items per generation
    mean: float
    std: float
    unbiased: bool
    temperature: float
    row_of: np.ndarray  # (generations + 1,) each generation's row in the result, -1 if not kept
    means: np.ndarray
    stds: np.ndarray

    def touch(self, part: int, parts: int) -> None:
        """Fault in this part's share of the result pages. Every thread writes a slice of every row,
        so left to the writes, the threads would queue for the same pages as the OS zeroes them; split
        by rows, the zeroing runs in parallel (≈ 5% of a 10k × 1k run on 2 cores)."""
        for result in (self.means, self.stds):
            flat = result.reshape(-1)
            share = slice(part * flat.size // parts, (part + 1) * flat.size // parts)
            flat[share][::_DOUBLES_PER_PAGE] = 0.0

    def run(self, streams: list[np.random.Generator], first_block: int) -> None:
        blocks = slice(first_block, first_block + len(streams))
        generations = len(self.row_of) - 1
        # This thread's columns as (kept generation, block, lineage in block) views: indexing is cheap.
        means = self.means.reshape(len(self.means), -1, LINEAGES_PER_STREAM)[:, blocks]
        stds = self.stds.reshape(len(self.stds), -1, LINEAGES_PER_STREAM)[:, blocks]
        # A generation that is not kept is written to one of two scratch rows: a child's row is never
        # its parent's.
        scratch = np.empty((2, 2, *means.shape[1:]))

        def fit(t: int) -> _Fit:
            row = self.row_of[t]
            return _Fit(means[row], stds[row]) if row >= 0 else _Fit(*scratch[t % 2])

        real = self.group(self.draw(streams, 1, self.n), self.n, self.mean, self.std)  # generation 0
        real = _Group(real.mean[0], real.var[0])
        first = fit(0)
        np.copyto(first.mean, real.mean)
        np.copyto(first.std, self.finish(real.var, 1.0 / self.n))
        loop = self.loop(self, real)
        # Draw buffers, reused chunk after chunk: a fresh 0.6 MB array each time would be fresh pages.
        synthetic_buffer = self.draw_buffer(len(streams))
        fresh_buffer = self.draw_buffer(len(streams)) if loop.fresh_real else None
        for start in range(1, generations + 1, GENERATIONS_PER_DRAW):
            count = min(GENERATIONS_PER_DRAW, generations + 1 - start)
            # Synthetic groups are drawn standard and scaled by each lineage's parent in ``advance``.
            synthetic = loop.prepare(self.draw(streams, count, self.m, synthetic_buffer))
            fresh = (
                None
                if fresh_buffer is None
                else self.group(self.draw(streams, count, self.n, fresh_buffer), self.n, self.mean, self.std)
            )
            for step, t in enumerate(range(start, start + count)):
                loop.advance(
                    fit(t - 1),
                    _Group(synthetic.mean[step], synthetic.var[step]),
                    None if fresh is None else _Group(fresh.mean[step], fresh.var[step]),
                    fit(t),
                )

    @staticmethod
    def draw_buffer(n_streams: int) -> _Group:
        shape = (n_streams, GENERATIONS_PER_DRAW, LINEAGES_PER_STREAM)  # a stream fills a contiguous slab
        return _Group(np.empty(shape), np.empty(shape))

    def draw(
        self, streams: list[np.random.Generator], count: int, size: int, buffer: _Group | None = None
    ) -> _Group:
        """``count`` groups of ``size`` draws per lineage, as *raw* draws of their statistics' laws:
        ``mean`` standard normal, ``var`` Γ((size − 1)/2) (for N(c, s²) draws, the group mean is
        c + s·mean/√size and the biased variance 2s²·var/size). Arrays of shape (count, blocks,
        lineages per block), each block from its stream."""
        buffer = self.draw_buffer(len(streams)) if buffer is None else buffer
        means, variances = buffer.mean[:, :count], buffer.var[:, :count]
        for stream, mean_out, var_out in zip(streams, means, variances, strict=True):
            stream.standard_normal(out=mean_out)
            stream.standard_gamma((size - 1) / 2, out=var_out)
        return _Group(means.transpose(1, 0, 2), variances.transpose(1, 0, 2))

    @staticmethod
    def group(raw: _Group, size: int, centre: float, spread: float) -> _Group:
        """Raw draws (``draw``) scaled, in place, to the statistics of groups of N(centre, spread²)."""
        raw.mean[...] *= spread / np.sqrt(size)
        if centre != 0.0:
            raw.mean[...] += centre
        raw.var[...] *= 2.0 * spread**2 / size
        return raw

    def finish(self, scatter: np.ndarray, sum_squared_weights: float) -> np.ndarray:
        """The model's std from a weighted scatter: the fitted std (Bessel-corrected for weights when
        ``unbiased``) times the temperature."""
        std = np.sqrt(scatter / (1.0 - sum_squared_weights) if self.unbiased else scatter)
        if self.temperature != 1.0:
            std *= self.temperature
        return std


class _Loop(ABC):
    """One generation of a loop on a thread's lineages. ``advance`` writes ``out`` from ``parent``,
    the parent's synthetic group drawn standard (scale it by the parent) and, when ``fresh_real``,
    a new real group."""

    fresh_real: ClassVar[bool] = False

    def __init__(self, simulation: _Simulation, real: _Group) -> None:
        self.simulation, self.real = simulation, real

    def prepare(self, raw: _Group) -> _Group:
        """Transform a chunk of raw synthetic draws once, before the per-generation ``advance``; by
        default into the statistics of standard groups, N(0, 1)."""
        return self.simulation.group(raw, self.simulation.m, 0.0, 1.0)

    @abstractmethod
    def advance(self, parent: _Fit, synthetic: _Group, fresh: _Group | None, out: _Fit) -> None: ...

    @staticmethod
    def drawn_from(parent: _Fit, synthetic: _Group) -> _Group:
        """A standard synthetic group as drawn from the parent, N(parent mean, parent std²)."""
        return _Group(parent.mean + parent.std * synthetic.mean, parent.std**2 * synthetic.var)


class _Replace(_Loop):
    def prepare(self, raw: _Group) -> _Group:
        # The refit std is the parent's times τ·sqrt(2·var / (m − 1)) (2·var / m if biased): one factor
        # per lineage, scaled and rooted in place; the mean moves by the parent's std times mean / √m.
        m, temperature = self.simulation.m, self.simulation.temperature
        raw.mean[...] *= 1.0 / np.sqrt(m)
        raw.var[...] *= 2.0 * temperature**2 / (m - 1 if self.simulation.unbiased else m)
        np.sqrt(raw.var, out=raw.var)
        return raw

    def advance(self, parent: _Fit, synthetic: _Group, fresh: _Group | None, out: _Fit) -> None:
        np.multiply(synthetic.mean, parent.std, out=synthetic.mean)
        np.add(parent.mean, synthetic.mean, out=out.mean)
        np.multiply(parent.std, synthetic.var, out=out.std)


class _Mix(_Loop):
    """Real mass R = 1/(1 + λ), synthetic mass S = 1 − R, uniform within each group. With d = synthetic
    mean − real mean, the weighted fit is mean = real mean + S·d, scatter = R·v_real + S·v_synth + R·S·d²."""

    def __init__(self, simulation: _Simulation, real: _Group) -> None:
        super().__init__(simulation, real)
        self.real_mass, self.synthetic_mass, self.sum_squared_weights = mix_masses(
            simulation.lam, simulation.n, simulation.m
        )

    def advance(self, parent: _Fit, synthetic: _Group, fresh: _Group | None, out: _Fit) -> None:
        real = self.real if fresh is None else fresh
        synthetic = self.drawn_from(parent, synthetic)
        difference = synthetic.mean - real.mean
        np.add(real.mean, self.synthetic_mass * difference, out=out.mean)
        scatter = (
            self.real_mass * real.var
            + self.synthetic_mass * synthetic.var
            + self.real_mass * self.synthetic_mass * difference**2
        )
        np.copyto(out.std, self.simulation.finish(scatter, self.sum_squared_weights))


class _Fresh(_Mix):
    fresh_real = True


class _Accumulate(_Loop):
    """Chan et al.'s pairwise update of (count, mean, scatter); uniform weights over all items so far."""

    def __init__(self, simulation: _Simulation, real: _Group) -> None:
        super().__init__(simulation, real)
        self.total, self.mean, self.scatter = float(simulation.n), real.mean.copy(), simulation.n * real.var

    def advance(self, parent: _Fit, synthetic: _Group, fresh: _Group | None, out: _Fit) -> None:
        m = self.simulation.m
        synthetic = self.drawn_from(parent, synthetic)
        delta = synthetic.mean - self.mean
        self.scatter += m * synthetic.var + delta**2 * (self.total * m / (self.total + m))
        self.mean += delta * (m / (self.total + m))
        self.total += m
        np.copyto(out.mean, self.mean)
        np.copyto(out.std, self.simulation.finish(self.scatter / self.total, 1.0 / self.total))


LOOPS: dict[str, type[_Loop]] = {
    "replace": _Replace,
    "mix": _Mix,
    "fresh": _Fresh,
    "accumulate": _Accumulate,
}
