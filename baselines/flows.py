"""Normalizing flows (normflows) trained by maximum likelihood on the weighted pool.

``FlowModel`` owns the training step; an architecture overrides one hook, ``build_flow``. Each
generation warm-starts from the previous one's weights (the env hands over a copy) and trains for a
fixed budget of optimizer steps set by the env spec, whatever the pool size: budgets are part of the
protocol. Minibatches are drawn from the training distribution itself (items drawn with probability
equal to their weight), so any curation weights are honoured exactly. The sampling ``temperature``
τ scales the base Gaussian's spread when sampling and in ``log_prob`` (normflows' own temperature,
Glow's "reduced-temperature" sampling); training always uses τ = 1.

torch and normflows are imported on first use: registering these models costs nothing.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from collapsebench.checks import integer, number_in, optional_integer
from collapsebench.models import GenerativeModel, WeightedData, check_temperature, register_model


class FlowModel(GenerativeModel):
    """A normflows ``NormalizingFlow`` with an Adam maximum-likelihood training loop."""

    sampling_params = ("temperature",)

    def __init__(
        self,
        steps: int = 500,
        initial_steps: int | None = None,
        batch_size: int = 256,
        lr: float = 1e-3,
        grad_clip: float = 10.0,
        hidden: int = 64,
        layers: int = 8,
        threads: int | None = 1,
        temperature: float = 1.0,
    ) -> None:
        self.steps = integer("steps", steps, 0)
        self.initial_steps = integer("initial_steps", steps if initial_steps is None else initial_steps, 0)
        self.batch_size = integer("batch_size", batch_size, 1)
        self.lr, self.grad_clip = (
            number_in("lr", lr, "(0, inf)"),
            number_in("grad_clip", grad_clip, "(0, inf]"),
        )
        self.hidden, self.layers = integer("hidden", hidden, 1), integer("layers", layers, 1)
        # One CPU thread by default: these networks are too small to gain from more, and two
        # multi-threaded runs on the same cores spin against each other (measured: 100 s per
        # generation instead of 7). None keeps torch's own setting (use it on a GPU machine).
        self.threads = optional_integer("threads", threads, 1)
        self.temperature = check_temperature(temperature)
        self._flow: Any = None
        self._dim: int | None = None
        self.last_losses: list[float] = []

    @abstractmethod
    def build_flow(self, dim: int) -> Any:
        """A fresh ``normflows.NormalizingFlow`` for ``dim``-dimensional data."""

    # ------------------------------------------------------------------ the contract
    def fit(self, data: WeightedData, rng: np.random.Generator) -> None:
        import torch

        x = np.asarray(data.samples, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError(f"flows here take (n, d ≥ 2) vectors, got samples of shape {x.shape}")
        first = self._flow is None
        with torch.random.fork_rng(devices=[]), torch_threads(self.threads):
            torch.manual_seed(int(rng.integers(2**63)))
            if first:
                self._dim = x.shape[1]
                self._flow = self.build_flow(self._dim)
            samples = torch.from_numpy(x.astype(np.float32))  # float32: twice the speed on CPU
            weights = torch.from_numpy(np.asarray(data.weights, dtype=np.float64))
            optimizer = torch.optim.Adam(self._flow.parameters(), lr=self.lr)
            self._flow.train()
            self.last_losses = []
            for _ in range(self.initial_steps if first else self.steps):
                batch = samples[torch.multinomial(weights, self.batch_size, replacement=True)]
                loss = self._flow.forward_kld(batch)
                if not torch.isfinite(loss):
                    continue  # a rare blow-up of one batch: skip it rather than poison the weights
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self._flow.parameters(), self.grad_clip)
                optimizer.step()
                self.last_losses.append(loss.item())
            self._flow.eval()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        import torch

        flow = self._fitted()
        with (
            torch.random.fork_rng(devices=[]),
            torch.no_grad(),
            torch_threads(self.threads),
            self._tempered(flow),
        ):
            torch.manual_seed(int(rng.integers(2**63)))
            samples, _ = flow.sample(n)
        samples = samples.numpy().astype(np.float64)
        if not np.all(np.isfinite(samples)):
            raise FloatingPointError("the flow produced non-finite samples: its training diverged")
        return samples

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        import torch

        flow = self._fitted()
        with torch.no_grad(), torch_threads(self.threads), self._tempered(flow):
            return flow.log_prob(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy().astype(np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        flow = self._fitted()
        state = {f"flow.{key}": value.detach().cpu().numpy() for key, value in flow.state_dict().items()}
        return {"dim": np.array(self._dim), **state}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self._dim = int(state["dim"])
        self._flow = self.build_flow(self._dim)
        self._flow.load_state_dict(
            {
                key[len("flow.") :]: torch.from_numpy(np.array(value))
                for key, value in state.items()
                if key != "dim"
            }
        )
        self._flow.eval()

    def _fitted(self) -> Any:
        if self._flow is None:
            raise RuntimeError("the model is not fitted")
        return self._flow

    @contextmanager
    def _tempered(self, flow: Any) -> Iterator[None]:
        """The flow's base distribution at this model's temperature, for sampling and densities only
        (normflows reads ``q0.temperature``; None is τ = 1)."""
        flow.q0.temperature = None if self.temperature == 1.0 else self.temperature
        try:
            yield
        finally:
            flow.q0.temperature = None

    @property
    def n_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self._fitted().parameters())


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: leave torch's setting), then restore the process
    setting. Shared by every torch model here: two multi-threaded runs on few cores thrash."""
    import torch

    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@register_model("realnvp")
class RealNVP(FlowModel):
    """RealNVP (Dinh et al. 2017): ``layers`` affine coupling layers with alternating masks, each
    with scale and shift MLPs of two hidden layers of ``hidden`` units (normflows' MaskedAffineFlow),
    each followed by an ActNorm layer."""

    def build_flow(self, dim: int) -> Any:
        import normflows as nf
        import torch

        mask = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(dim)])
        flows = []
        for layer in range(self.layers):
            # Bounded log-scales (2·tanh): unbounded ones overflow off the training support.
            scale = nf.nets.MLP(
                [dim, self.hidden, self.hidden, dim], init_zeros=True, output_fn="tanh", output_scale=2.0
            )
            shift = nf.nets.MLP([dim, self.hidden, self.hidden, dim], init_zeros=True)
            flows.append(nf.flows.MaskedAffineFlow(mask if layer % 2 == 0 else 1 - mask, shift, scale))
            flows.append(nf.flows.ActNorm(dim))
        return nf.NormalizingFlow(nf.distributions.DiagGaussian(dim), flows)


@register_model("spline-flow")
class SplineFlow(FlowModel):
    """Neural spline flow (Durkan et al. 2019): ``layers`` rational-quadratic coupling layers
    (``bins`` bins, linear tails beyond ±``tail_bound``) interleaved with learned LU permutations."""

    def __init__(self, bins: int = 8, tail_bound: float = 4.0, layers: int = 4, **kwargs: Any) -> None:
        super().__init__(layers=layers, **kwargs)
        self.bins, self.tail_bound = integer("bins", bins, 1), number_in("tail_bound", tail_bound, "(0, inf)")

    def build_flow(self, dim: int) -> Any:
        import normflows as nf

        flows = []
        for _ in range(self.layers):
            flows.append(
                nf.flows.CoupledRationalQuadraticSpline(
                    dim, 2, self.hidden, num_bins=self.bins, tail_bound=self.tail_bound
                )
            )
            flows.append(nf.flows.LULinearPermute(dim))
        return nf.NormalizingFlow(nf.distributions.DiagGaussian(dim), flows)
