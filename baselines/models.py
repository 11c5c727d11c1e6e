"""Reference generative models for the analytic worlds: Gaussian MLE, Gaussian mixture, KDE."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from collapsebench.checks import flag, in_interval, integer, number_in, one_of
from collapsebench.models import GenerativeModel, WeightedData, check_temperature, register_model


def _as_2d(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2:
        raise ValueError(f"this model takes (n, d) vectors, got samples of shape {samples.shape}")
    return samples


@register_model("gaussian")
class GaussianMLE(GenerativeModel):
    """A multivariate Gaussian fitted by (weighted) maximum likelihood.

    ``unbiased=True`` uses the unbiased covariance with reliability weights, Σ wᵢ(xᵢ−μ)(xᵢ−μ)ᵀ / (1 − Σ wᵢ²)
    for normalized weights; with uniform weights that is the usual 1/(n−1) estimator, the one of
    the seed paper's collapse warm-up. ``unbiased=False`` is the plain MLE (1/n). The model is
    N(μ̂, τ²Σ̂) for the sampling ``temperature`` τ (``cov_`` holds the fitted Σ̂).
    """

    sampling_params = ("temperature",)

    def __init__(self, unbiased: bool = True, temperature: float = 1.0) -> None:
        self.unbiased = flag("unbiased", unbiased)
        self.temperature = check_temperature(temperature)
        self.mean_: np.ndarray | None = None
        self.cov_: np.ndarray | None = None

    @property
    def min_train_items(self) -> int:
        return 2  # a covariance needs two points

    def fit(self, data: WeightedData, rng: np.random.Generator) -> None:
        x, w = _as_2d(data.samples), data.weights
        if len(x) < self.min_train_items:
            raise ValueError("the Gaussian needs at least 2 training items with positive weight")
        mean = w @ x
        centered = x - mean
        scatter = (centered * w[:, None]).T @ centered
        self.mean_ = mean
        self.cov_ = scatter / (1.0 - np.sum(w**2)) if self.unbiased else scatter

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.cov_ is None:
            raise RuntimeError("the model is not fitted")
        return self.mean_, self.cov_

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        mean, cov = self._fitted()
        # eigh rather than Cholesky: a collapsed (singular) covariance still samples.
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        root = eigenvectors * (self.temperature * np.sqrt(np.clip(eigenvalues, 0.0, None)))
        return mean + rng.standard_normal((n, mean.size)) @ root.T

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        from scipy.stats import multivariate_normal

        density = multivariate_normal(self._fitted()[0], self.covariance(), allow_singular=True)
        return np.atleast_1d(density.logpdf(_as_2d(x)))

    def covariance(self) -> np.ndarray:
        return self.temperature**2 * self._fitted()[1]

    def state_dict(self) -> dict[str, np.ndarray]:
        mean, cov = self._fitted()
        return {"mean": mean, "cov": cov}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean_, self.cov_ = np.asarray(state["mean"], float), np.asarray(state["cov"], float)


@register_model("gmm")
class GaussianMixtureModel(GenerativeModel):
    """scikit-learn's ``GaussianMixture`` (EM), warm-started from the previous generation's mixture.

    It has no sample weights: weighted pools are turned into a training set by systematic resampling
    (``WeightedData.resample``), which returns the pool itself when the weights are uniform. The
    sampling ``temperature`` τ scales every component's covariance by τ² (weights and means stay).
    """

    _FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    sampling_params = ("temperature",)

    def __init__(
        self,
        n_components: int = 8,
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full",
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        warm_start: bool = True,
        temperature: float = 1.0,
    ) -> None:
        from sklearn.mixture import GaussianMixture

        self.temperature = check_temperature(temperature)
        self._mixture = GaussianMixture(
            n_components=integer("n_components", n_components, 1),
            covariance_type=one_of("covariance_type", covariance_type, ("full", "tied", "diag", "spherical")),
            max_iter=integer("max_iter", max_iter, 1),
            tol=number_in("tol", tol, "[0, inf)"),
            reg_covar=number_in("reg_covar", reg_covar, "[0, inf)"),
            warm_start=flag("warm_start", warm_start),
        )

    @property
    def min_train_items(self) -> int:
        return int(self._mixture.n_components)  # scikit-learn's EM needs an item per component

    def fit(self, data: WeightedData, rng: np.random.Generator) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        x = _as_2d(data.samples if data.is_uniform else data.resample(rng))
        if len(x) < self.min_train_items:
            raise ValueError(f"{len(x)} training items for {self._mixture.n_components} mixture components")
        self._mixture.random_state = int(rng.integers(2**31))
        with warnings.catch_warnings():
            # A lineage that collapsed converges slowly: that is the phenomenon, not a fault.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._mixture.fit(x)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        mixture = self._mixture
        counts = rng.multinomial(n, mixture.weights_ / mixture.weights_.sum())
        covariances = self._sampled_covariances()
        parts = [
            rng.multivariate_normal(mean, cov, size=count, method="eigh")
            for mean, cov, count in zip(mixture.means_, covariances, counts, strict=True)
        ]
        return rng.permutation(np.concatenate(parts))

    def _sampled_covariances(self) -> np.ndarray:
        """Each component's covariance as sampled: the fitted one times τ²."""
        return self.temperature**2 * self._full_covariances()

    def _full_covariances(self) -> np.ndarray:
        mixture = self._mixture
        k, d = mixture.means_.shape
        kind = mixture.covariance_type
        if kind == "full":
            return mixture.covariances_
        if kind == "tied":
            return np.broadcast_to(mixture.covariances_, (k, d, d))
        variances = (
            mixture.covariances_ if kind == "diag" else np.repeat(mixture.covariances_[:, None], d, axis=1)
        )
        return np.stack([np.diag(v) for v in variances])

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        x = _as_2d(x)
        if self.temperature == 1.0:
            return self._mixture.score_samples(x)
        from scipy.special import logsumexp
        from scipy.stats import multivariate_normal

        mixture = self._mixture
        covariances = self._sampled_covariances()
        components = [
            np.log(weight) + multivariate_normal(mean, cov, allow_singular=True).logpdf(x)
            for weight, mean, cov in zip(mixture.weights_, mixture.means_, covariances, strict=True)
        ]
        return logsumexp(np.reshape(components, (len(components), len(x))), axis=0)

    def covariance(self) -> np.ndarray:
        weights, means = self._mixture.weights_, self._mixture.means_
        overall = weights @ means
        within = np.einsum("k,kij->ij", weights, self._sampled_covariances())
        between = np.einsum("k,ki,kj->ij", weights, means - overall, means - overall)
        return within + between

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self._mixture, name)) for name in self._FITTED}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in self._FITTED:
            setattr(self._mixture, name, np.asarray(state[name], dtype=np.float64))
        self._mixture.n_features_in_ = self._mixture.means_.shape[1]
        self._mixture.converged_, self._mixture.n_iter_, self._mixture.lower_bound_ = True, 0, -np.inf


@register_model("kde")
class KernelDensityModel(GenerativeModel):
    """A Gaussian kernel density estimate on the (weighted) training items.

    Refitting a KDE on its own samples adds the kernel's variance every generation: the opposite
    failure to the Gaussian's shrinkage, and a useful contrast. The sampling ``temperature`` τ scales
    the fitted bandwidth (samples stay closer to the training items for τ < 1).
    """

    sampling_params = ("temperature",)

    def __init__(
        self, bandwidth: float | Literal["scott", "silverman"] = "scott", temperature: float = 1.0
    ) -> None:
        if not (in_interval(bandwidth, "(0, inf)") or bandwidth in ("scott", "silverman")):
            raise ValueError(f"bandwidth must be a number > 0, 'scott' or 'silverman', got {bandwidth!r}")
        self.bandwidth = bandwidth
        self.temperature = check_temperature(temperature)
        self._kde: Any = None

    def fit(self, data: WeightedData, rng: np.random.Generator) -> None:
        from sklearn.neighbors import KernelDensity

        items = _as_2d(data.samples)
        self._kde = KernelDensity(kernel="gaussian", bandwidth=self.bandwidth)
        self._kde.fit(items, sample_weight=data.weights)
        if self.temperature != 1.0:  # the rule's bandwidth (scott, silverman) needs the data first
            self._kde = KernelDensity(kernel="gaussian", bandwidth=self.temperature * self._kde.bandwidth_)
            self._kde.fit(items, sample_weight=data.weights)

    def _fitted(self) -> Any:
        if self._kde is None:
            raise RuntimeError("the model is not fitted")
        return self._kde

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        kde = self._fitted()
        data, weights = np.asarray(kde.tree_.data), np.asarray(kde.tree_.sample_weight)
        centers = data[rng.choice(len(data), size=n, p=weights / weights.sum())]
        return centers + kde.bandwidth_ * rng.standard_normal(centers.shape)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        return self._fitted().score_samples(_as_2d(x))

    def state_dict(self) -> dict[str, np.ndarray]:
        kde = self._fitted()
        return {"data": np.asarray(kde.tree_.data), "weights": np.asarray(kde.tree_.sample_weight)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        weights = np.asarray(state["weights"], dtype=np.float64)
        self.fit(
            WeightedData(np.asarray(state["data"], dtype=np.float64), weights / weights.sum()),
            np.random.default_rng(0),
        )
