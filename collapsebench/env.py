"""``CollapseEnv``: one lineage of generative models retrained on a contaminated data pool.

The env is generic; an env *family* (``envs/``) supplies the real data and its defaults, the id picks
the pool dynamics. One ``step`` is one generation, in four stages::

    weights = curation_policy(obs)                      # the action
    1. train   model_t on the pool, weighted by the action (warm-starting from model_{t-1})
    2. sample  n_synthetic items of model_t (and n_eval more to score it)
    3. score   model_t against the held-out real test split
    4. update  the pool by the dynamics (replace / mix / accumulate / fresh)
"""

from __future__ import annotations

import time
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from collapsebench._params import bound_params
from collapsebench.checks import flag, integer, optional_integer
from collapsebench.data import RealData, RealSplit
from collapsebench.features import FeatureExtractor, cached_features, make_features
from collapsebench.first_models import FirstModelCache
from collapsebench.metrics import TailReference, gaussian_statistics, knn_radii
from collapsebench.models import GenerativeModel, WeightedData, make_model
from collapsebench.pool import DYNAMICS, EMPTY, REAL, Pool, PoolDynamics, PoolUpdate
from collapsebench.rewards import check_reward_fits, make_reward
from collapsebench.scoring import (
    METRICS,
    PRDC_METRICS,
    SAMPLE_REWARD_METRIC,
    STANDARD_METRICS,
    TAIL_MASS_METRIC,
    Evaluation,
    FeatureMap,
    flatten_features,
    score,
)
from collapsebench.seeding import StreamSeeds

Observation = dict[str, Any]


class _StageClock:
    """Wall time of each stage of a step (train / sample / score / update), for ``last_step_seconds``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = now - self._last
        self._last = now


def _weight_problem(weights: np.ndarray) -> str:
    """What is wrong with an action whose weights are not all in [0, 1]."""
    bad = np.flatnonzero(~np.isfinite(weights))
    if bad.size:
        return f"the action has NaN or infinite weights at slots {bad[:10].tolist()}"
    bad = np.flatnonzero(weights < 0)
    if bad.size:
        return f"the action has negative weights at slots {bad[:10].tolist()} (min {weights.min():g})"
    bad = np.flatnonzero(weights > 1)
    return (
        f"the action has weights above 1 at slots {bad[:10].tolist()} (max {weights.max():g}); "
        "the action space is Box(0, 1): rescale, e.g. weights / weights.max()"
    )


# Independent random streams, so that e.g. changing n_eval never changes the training data.
_DATA, _FIT, _SAMPLE, _EVAL, _FRESH, _METRIC = range(1, 7)


class CollapseEnv(gym.Env[Observation, np.ndarray]):
    """A lineage of generative models, each trained on a pool polluted by its predecessors.

    **Observation** (``spaces.Dict``), for a pool of fixed ``capacity`` slots:
      - ``samples``: (capacity, *sample_shape), the pool's items; empty slots are 0. float64, or the
        real data's own dtype (uint8 for images: samples are quantized as saved images are).
      - ``origin``: (capacity,) int64, -1 for a real item, g ≥ 0 for a sample of generation g,
        -2 for an empty slot.
      - ``valid``: (capacity,) int8, 1 for an occupied slot.
      - ``generation``: the generation the next ``step`` trains (0 after ``reset``).

    **Action**: (capacity,) weights in [0, 1]; the training distribution is proportional to the
    weights over valid items (weight on empty slots is ignored). Wrong shape, NaN/inf, negative
    weights, weights above 1, or no weight on any valid item raise ``ValueError`` and change nothing.

    **Reward**: minus the env's headline metric (``headline_metric``) of the model trained this step.

    **Termination**: never terminated; truncated after ``generations + 1`` steps (t = 0, ..., T).

    **Info**: ``generation`` (the one just trained), ``metrics`` (dict of collapse metrics),
    ``n_train`` (items with positive weight), ``effective_train_size`` (Kish), ``samples`` (the
    n_synthetic items this generation added to the pool). Wall time per stage of the last step:
    ``env.last_step_seconds``.

    **Sample reward**: ``sample_reward``, a registered reward name (``cb.register_reward``; with
    ``sample_reward_kwargs``), adds the metric ``sample_reward``: the mean reward r(x) of the model's
    ``n_eval`` samples, the quantity reward curation (Ferbach et al.) raises. It only measures: every
    other number of the run is the same with or without it. The reward scores two zero items when the
    env is built, so parameters that do not fit the items' shape fail here, not after a training.

    **First models**: ``first_models`` (a ``FirstModelCache``) lets lineages that start from the same
    data share generation 0's fit; it changes no result (see ``collapsebench.first_models``).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)
    config: dict[str, Any]  # the resolved constructor arguments, set by __new__

    def __new__(cls, *args: Any, **kwargs: Any) -> CollapseEnv:
        instance = super().__new__(cls)
        instance.config = bound_params(cls, args, kwargs)  # the resolved env config, for results records
        return instance

    def __init__(
        self,
        real_data: RealData,
        *,
        dynamics: str = "mix",
        n_real: int = 100,
        n_synthetic: int | None = None,
        n_test: int = 1000,
        n_eval: int = 1000,
        generations: int = 100,
        model: str | GenerativeModel = "gaussian",
        model_kwargs: dict[str, Any] | None = None,
        warm_start: bool = True,
        headline_metric: str = "fd",
        metrics: tuple[str, ...] = STANDARD_METRICS,
        nearest_k: int = 3,
        w2_exact_max_pairs: int = 4_000_000,
        features: FeatureMap | str | None = None,
        sample_reward: str | None = None,
        sample_reward_kwargs: dict[str, Any] | None = None,
        first_models: FirstModelCache | None = None,
    ) -> None:
        integer("nearest_k", nearest_k, 1)
        for name, value, low in (
            ("n_real", n_real, 1),
            ("n_test", n_test, nearest_k + 1),
            ("n_eval", n_eval, nearest_k + 1),
            ("generations", generations, 0),
            ("w2_exact_max_pairs", w2_exact_max_pairs, 0),
        ):
            integer(name, value, low)
        optional_integer("n_synthetic", n_synthetic, 1)
        warm_start = flag("warm_start", warm_start)
        if isinstance(metrics, str):
            raise ValueError(f"metrics must be a sequence of metric names, got the string {metrics!r}")
        for name in metrics:
            METRICS.get(name)  # an unknown name fails here, listing the registered ones, not after training
        if headline_metric not in metrics:
            raise ValueError(f"headline_metric {headline_metric!r} is not among the metrics {metrics}")
        if sample_reward is None and SAMPLE_REWARD_METRIC in metrics:
            raise ValueError(
                f"the metric {SAMPLE_REWARD_METRIC!r} needs a reward: pass sample_reward=NAME "
                "(a registered reward, see cb.register_reward)"
            )
        if sample_reward is None and sample_reward_kwargs:
            raise ValueError("sample_reward_kwargs only apply with a sample_reward name")
        if sample_reward is not None and not isinstance(sample_reward, str):
            raise ValueError(
                "sample_reward must be a registered reward's name, so that runs record it: register "
                f"the function with cb.register_reward first (got {sample_reward!r})"
            )
        if isinstance(model, GenerativeModel) and model_kwargs:
            raise ValueError("model_kwargs only apply when model is a registered name")

        self.real_data = real_data
        self.dynamics_name = dynamics
        self.dynamics: PoolDynamics = DYNAMICS.make(dynamics)
        self.n_real = int(n_real)
        self.n_synthetic = int(n_real if n_synthetic is None else n_synthetic)
        self.n_test, self.n_eval, self.generations = int(n_test), int(n_eval), int(generations)
        self._model_template = (
            model if isinstance(model, GenerativeModel) else make_model(model, **(model_kwargs or {}))
        )
        if self.n_real < self._model_template.min_train_items:
            raise ValueError(
                f"n_real={self.n_real} is too few: model {self._model_template.name!r} trains on at least "
                f"{self._model_template.min_train_items} items, and generation 0 trains on the n_real real "
                "items alone"
            )
        self.warm_start = warm_start
        self.headline_metric = headline_metric
        self.sample_reward = (
            None if sample_reward is None else make_reward(sample_reward, **(sample_reward_kwargs or {}))
        )
        self.metrics = tuple(metrics) + (
            (SAMPLE_REWARD_METRIC,)
            if self.sample_reward is not None and SAMPLE_REWARD_METRIC not in metrics
            else ()
        )
        self.nearest_k = nearest_k
        self.w2_exact_max_pairs = w2_exact_max_pairs
        self.features: FeatureMap = (
            make_features(features) if isinstance(features, str) else (features or flatten_features)
        )
        self.capacity = self.dynamics.capacity(self.n_real, self.n_synthetic, self.generations)

        sample_shape = tuple(real_data.sample_shape)
        self.sample_dtype = np.dtype(getattr(real_data, "dtype", np.float64))
        if self.sample_reward is not None:
            check_reward_fits(self.sample_reward, sample_shape, self.sample_dtype, str(sample_reward))
        if np.issubdtype(self.sample_dtype, np.integer):
            limits = np.iinfo(self.sample_dtype)
            low, high = limits.min, limits.max
        else:
            low, high = -np.inf, np.inf
        self.observation_space = spaces.Dict(
            {
                "samples": spaces.Box(low, high, (self.capacity, *sample_shape), self.sample_dtype),
                "origin": spaces.Box(EMPTY, self.generations, (self.capacity,), np.int64),
                "valid": spaces.MultiBinary(self.capacity),
                "generation": spaces.Discrete(self.generations + 2),
            }
        )
        self.action_space = spaces.Box(0.0, 1.0, (self.capacity,), np.float64)

        self._root_seed: int | None = None
        self._streams: StreamSeeds | None = None
        self._split: RealSplit | None = None
        self._pool: Pool | None = None
        self._model: GenerativeModel | None = None
        self._generation = 0
        self.last_step_seconds: dict[str, float] = {}
        self.first_models = first_models

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict]:
        super().reset(seed=seed)
        self._root_seed = int(self.np_random.integers(2**63))
        # The per-generation streams' seeds are hashed many generations at a time (≈ 2 µs a step
        # instead of ≈ 50 for SeedSequence's own loop).
        fresh = (_FRESH,) if self.dynamics.needs_fresh_real else ()
        self._streams = StreamSeeds(self._root_seed, (_FIT, _SAMPLE, _EVAL, _METRIC, *fresh))
        self._split = self.real_data.split(self.n_test, self._rng(_DATA, 0))
        cache_key = getattr(self._split, "cache_key", None)
        self._real_test_features = (
            cached_features(self.features, self._split.test, cache_key)
            if cache_key is not None and isinstance(self.features, FeatureExtractor)
            else self.features(self._split.test)
        )
        # Once per episode, not per generation: FD's real mean and covariance (2048-d for Inception).
        self._real_statistics = gaussian_statistics(self._real_test_features)
        self._real_radii = (
            knn_radii(self._real_test_features, self.nearest_k) if PRDC_METRICS & set(self.metrics) else None
        )
        self._real_tail = (
            TailReference.of(self._real_test_features, statistics=self._real_statistics)
            if TAIL_MASS_METRIC in self.metrics
            else None
        )
        population = getattr(self.real_data, "population_covariance", None)
        self._reference_covariance = (
            population
            if population is not None and self.features is flatten_features
            else self._real_statistics[1]
        )
        self._pool = Pool.of(self._split.draw_train(self.n_real, self._rng(_DATA, 1)), REAL)
        self._model = None
        self._generation = 0
        return self._observation(), {"generation": 0}

    def step(self, action: np.ndarray) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._pool is None:
            raise RuntimeError("call reset() before step()")
        if self._generation > self.generations:
            raise RuntimeError(f"the episode ended after {self.generations + 1} generations; call reset()")
        generation, pool = self._generation, self._pool
        weights = self.training_weights(action)  # raises before anything changes
        kept = weights > 0
        train = WeightedData(pool.samples[kept], weights[kept])
        synthetic_fraction = float(weights[~pool.is_real].sum())

        fit_rng, sample_rng, eval_rng = (self._rng(stream, generation) for stream in (_FIT, _SAMPLE, _EVAL))

        clock = _StageClock()
        # 1. train (a copy: the env only commits a generation that finished)
        if self.warm_start and self._model is not None:
            model = self._model.clone()
            model.fit(train, fit_rng)
        else:
            model = self._model_template.clone()
            if generation == 0 and self.first_models is not None:
                self.first_models.fit(model, train, fit_rng)
            else:
                model.fit(train, fit_rng)
        clock.lap("train")
        # 2. sample
        new_samples = self._as_items(model.sample(self.n_synthetic, sample_rng))
        eval_samples = self._as_items(model.sample(self.n_eval, eval_rng))
        clock.lap("sample")
        # 3. score
        evaluation = Evaluation(
            model=model,
            samples=eval_samples,
            real_test=self._split.test,
            real_test_features=self._real_test_features,
            real_statistics=self._real_statistics,
            reference_covariance=self._reference_covariance,
            synthetic_fraction=synthetic_fraction,
            real_data=self.real_data,
            train_samples=train.samples,
            features=self.features,
            identity_features=self.features is flatten_features,
            nearest_k=self.nearest_k,
            w2_exact_max_pairs=self.w2_exact_max_pairs,
            draw_seed=lambda: int(self._rng(_METRIC, generation).integers(2**31)),
            real_radii=self._real_radii,
            sample_reward=self.sample_reward,
            real_tail=self._real_tail,
        )
        metrics = score(evaluation, self.metrics)
        clock.lap("score")
        # 4. update the pool
        fresh = (
            self._split.draw_train(self.n_real, self._rng(_FRESH, generation))
            if self.dynamics.needs_fresh_real
            else None
        )
        next_pool = self.dynamics.update(PoolUpdate(pool, new_samples, generation, fresh))
        clock.lap("update")

        self._model, self._pool, self._generation = model, next_pool, generation + 1
        info = {
            "generation": generation,
            "metrics": metrics,
            "n_train": len(train),
            "effective_train_size": train.effective_size,
            "samples": new_samples,
        }
        self.last_step_seconds = clock.laps  # not in info: info is deterministic for a seed
        truncated = self._generation > self.generations
        return self._observation(), -metrics[self.headline_metric], False, truncated, info

    # ------------------------------------------------------------------ the contract, spelled out
    def training_weights(self, action: np.ndarray) -> np.ndarray:
        """Validate an action and return the normalized weights over the pool's items (not slots)."""
        assert self._pool is not None
        weights = np.asarray(action)
        if weights.dtype.kind == "c":  # converting would drop the imaginary parts with a mere warning
            raise ValueError(f"the action must be {self.capacity} real weights; got complex numbers")
        try:
            weights = weights.astype(np.float64, copy=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"the action must be an array of {self.capacity} numeric weights: {error}"
            ) from None
        if weights.shape != (self.capacity,):
            raise ValueError(
                f"the action must have shape ({self.capacity},), one weight per pool slot; "
                f"got {weights.shape}"
            )
        if not 0.0 <= weights.min() <= weights.max() <= 1.0:  # NaN fails every comparison
            raise ValueError(_weight_problem(weights))
        n_items = len(self._pool)
        on_items = weights[:n_items]
        total = on_items.sum()
        if total <= 0:
            if weights.sum() > 0:
                raise ValueError(
                    f"all the action's weight is on empty slots: only slots 0..{n_items - 1} hold items "
                    "(see obs['valid'])"
                )
            raise ValueError(
                "the action puts no weight on any item: at least one valid item needs weight > 0"
            )
        return on_items / total

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("call reset() first")
        return self._pool

    @property
    def model(self) -> GenerativeModel | None:
        """The model trained by the last step (None right after reset)."""
        return self._model

    @property
    def feature_version(self) -> str | None:
        """The feature extractor with its weights' hash and library versions (None: raw items)."""
        return self.features.version if isinstance(self.features, FeatureExtractor) else None

    @property
    def model_name(self) -> str:
        return self._model_template.name

    @property
    def model_params(self) -> dict[str, Any]:
        """The model's parameters as run records keep them (``GenerativeModel.recorded_params``)."""
        return self._model_template.recorded_params

    # ------------------------------------------------------------------ checkpoints (resume)
    def checkpoint(self) -> dict[str, np.ndarray]:
        """The state after the last finished generation, as numeric arrays (np.savez-able, no pickle)."""
        if self._pool is None:
            raise RuntimeError("call reset() first")
        state = {
            "root_seed": np.array(self._root_seed, dtype=np.uint64),
            "generation": np.array(self._generation, dtype=np.int64),
            "pool.samples": np.asarray(self._pool.samples),
            "pool.origin": np.asarray(self._pool.origin),
        }
        if self._model is not None:
            state.update(
                {f"model.{key}": np.asarray(value) for key, value in self._model.state_dict().items()}
            )
        return state

    def restore(self, state: dict[str, np.ndarray]) -> Observation:
        """Continue an episode from ``checkpoint()``; ``reset`` must have been called with the same seed."""
        if self._pool is None:
            raise RuntimeError("call reset(seed=...) with the run's seed before restore()")
        if int(state["root_seed"]) != self._root_seed:
            raise ValueError("this checkpoint belongs to another seed: reset with the run's seed first")
        generation = int(state["generation"])
        if not 0 <= generation <= self.generations + 1:
            raise ValueError(f"checkpoint generation {generation} is outside 0..{self.generations + 1}")
        model_state = {
            key[len("model.") :]: value for key, value in state.items() if key.startswith("model.")
        }
        model = None
        if model_state:
            model = self._model_template.clone()
            model.load_state_dict(model_state)
        self._pool = Pool(
            np.array(state["pool.samples"], dtype=self.sample_dtype),
            np.array(state["pool.origin"], dtype=np.int64),
        )
        self._model, self._generation = model, generation
        return self._observation()

    # ------------------------------------------------------------------ internals
    def _rng(self, stream: int, index: int) -> np.random.Generator:
        """The generator ``np.random.default_rng([root seed, stream, index])`` (same bits, tested)."""
        assert self._streams is not None
        return self._streams.generator(stream, index)

    def _as_items(self, samples: np.ndarray) -> np.ndarray:
        """Model samples in the pool's dtype; integer items (image pixels) are rounded and clipped, as
        saving a generated image does."""
        samples = np.asarray(samples)
        if np.issubdtype(self.sample_dtype, np.integer) and samples.dtype != self.sample_dtype:
            limits = np.iinfo(self.sample_dtype)
            samples = np.clip(np.rint(samples), limits.min, limits.max)
        return samples.astype(self.sample_dtype, copy=False)

    def _observation(self) -> Observation:
        assert self._pool is not None
        n_items = len(self._pool)
        samples = np.zeros(self.observation_space["samples"].shape, dtype=self.sample_dtype)
        samples[:n_items] = self._pool.samples
        origin = np.full(self.capacity, EMPTY, dtype=np.int64)
        origin[:n_items] = self._pool.origin
        valid = np.zeros(self.capacity, dtype=np.int8)
        valid[:n_items] = 1
        return {
            "samples": samples,
            "origin": origin,
            "valid": valid,
            "generation": np.int64(self._generation),
        }
