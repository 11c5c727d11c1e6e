"""Image worlds: Digits (embedded, CPU), MNIST, CIFAR-10 and FFHQ-64 (local files, GPU models).

The pool holds uint8 images (n, C, H, W): generated images are quantized like saved PNGs, as in the
seed code, which writes each generation's samples to disk and reads them back. FD and
precision/recall/density/coverage are computed on features (``collapsebench.features``); the real
test split is fixed per data set, so its features are computed once per extractor version and cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from collapsebench import datasets
from collapsebench.datasets import ImageDataset
from collapsebench.env import CollapseEnv

IMAGE_METRICS = ("fd", "precision", "recall", "density", "coverage", "synthetic_fraction")

_IMAGE_DOC = """
    - **Observation**: the pool, (capacity, {shape}) uint8 images with origin/valid/generation
      (``CollapseEnv``); capacity depends on the dynamics (mix: n_real + n_synthetic).
    - **Action**: per-slot weights in [0, 1]; minibatches are drawn with these weights.
    - **Reward**: −``fd``, the Fréchet distance in {features} features between {n_eval} samples and
      the first {n_test} images of the {test} (FID, when the features are Inception's).
    - **Termination**: truncated after ``generations`` + 1 steps.
    - **Data**: {data}
    - **Defaults (v0)**: {defaults}
    - **Fresh dynamics**: each generation draws n_real distinct images of the finite train split,
      independently of earlier draws. At v0's n_real (the whole split) every draw is the same images,
      so ``*-fresh-v0`` runs exactly as ``*-mix-v0``; ``*-fresh-v1`` draws half the split (n_real =
      n_synthetic = {half}), so about half of each draw is new to the one before.
    - **Version history**: v0 — initial release. v1 (``*-fresh-v1`` only) — n_real = n_synthetic =
      half the train split, so the fresh-data loop sees new real images each generation.
"""


class DigitsEnv(CollapseEnv):
    __doc__ = "scikit-learn's 8×8 handwritten digits, refitted by a small diffusion model on CPU.\n" + (
        _IMAGE_DOC.format(
            shape="1, 8, 8",
            half="650",
            features="``digits-cnn`` (128-d, bundled weights, 98.4% test accuracy)",
            n_eval=497,
            n_test=497,
            test="fixed 497-image test split",
            data="1,797 real images shipped with scikit-learn (no download): a fixed permutation (seed 0) "
            "gives 1,300 train and 497 test images.",
            defaults="n_real = n_synthetic = 1300 (all of the train split), T = 20; model "
            "``mlp-flow-matching`` (3 residual blocks of 256 units; 25 midpoint steps to sample): 300k "
            "images seen for generation 0 (≈ 30 s on one core), then 40k per generation (≈ 5 s, warm "
            "start). Extra metric: ``memorization``.",
        )
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(datasets.digits(), **kwargs)


class _FileImageEnv(CollapseEnv):
    """An image world read from local files: ``source(data_dir)`` gives its ``ImageDataset``."""

    source: Callable[[str | os.PathLike[str] | None], ImageDataset]

    def __init__(self, *, data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        super().__init__(type(self).source(data_dir), **kwargs)


class MNISTEnv(_FileImageEnv):
    __doc__ = "MNIST (28×28 grey digits) refitted by a DDPM.\n" + _IMAGE_DOC.format(
        shape="1, 28, 28",
        half="30,000",
        features="``mnist-cnn`` (128-d; train it from your MNIST files with baselines/train_feature_net.py)",
        n_eval=10000,
        n_test=10000,
        test="published 10,000-image test set",
        data="the four idx files in <data>/mnist/ (see ``collapsebench.datasets``).",
        defaults="n_real = n_synthetic = 60000, T = 20; ``ddpm`` (UNet widths 32-64-64, attention at 14×14), "
        "3M images seen for generation 0, then one epoch of the training pool per generation.",
    )

    source = staticmethod(datasets.mnist)


class CIFAREnv(_FileImageEnv):
    __doc__ = "CIFAR-10 refitted by a DDPM: the seed paper's (Bertrand et al.) main protocol.\n" + (
        _IMAGE_DOC.format(
            shape="3, 32, 32",
            half="25,000",
            features="Inception-v3 pool3 (``inception-v3``, the standard FID network; local weights file)",
            n_eval=10000,
            n_test=10000,
            test="published 10,000-image test set",
            data="the python version of CIFAR-10 in <data>/cifar-10/ (see ``collapsebench.datasets``).",
            defaults="the seed paper's: n_real = 50000 (the whole train set), |synthetic| = |real| per "
            "generation, T = 20, FID on 10k samples against the 10k test images; ``ddpm`` (UNet "
            "128-256-256-256, attention at 16×16, 35.7M parameters, as google/ddpm-cifar10-32), "
            "20M images seen for generation 0 (the paper starts from a pretrained model), then one epoch "
            "of the training pool per generation, DDIM sampling in 50 steps. Use a GPU.",
        )
    )

    source = staticmethod(datasets.cifar10)


class FFHQ64Env(_FileImageEnv):
    __doc__ = "FFHQ faces at 64×64 refitted by a DDPM.\n" + _IMAGE_DOC.format(
        shape="3, 64, 64",
        half="30,000",
        features="Inception-v3 pool3 (``inception-v3``)",
        n_eval=10000,
        n_test=10000,
        test="last 10,000 files (by name) of the folder",
        data="a folder of 64×64 RGB PNGs in <data>/ffhq64/; the last 1/7 (by file name) is the test split.",
        defaults="n_real = n_synthetic = 60000, T = 20; ``ddpm`` (UNet 128-256-256-256, attention at 16×16), "
        "20M images seen for generation 0, then one epoch per generation. Use a GPU.",
    )

    source = staticmethod(datasets.ffhq64)


_IMAGE_COMMON: dict[str, Any] = {
    "generations": 20,
    "headline_metric": "fd",
    "nearest_k": 5,  # PRDC's published default for images
}
DIGITS_DEFAULTS: dict[str, Any] = {
    **_IMAGE_COMMON,
    "n_real": 1300,
    "n_synthetic": 1300,
    "n_test": 497,
    "n_eval": 497,
    "model": "mlp-flow-matching",
    "model_kwargs": {
        "hidden": 256,
        "depth": 3,
        "initial_images": 300_000,
        "images_per_generation": 40_000,
        "batch_size": 128,
        "lr": 1e-3,
        "ema_decay": 0.995,  # 313 steps per generation: the average spans ≈ 200 of them
        "sample_steps": 25,
    },
    "features": "digits-cnn",
    "metrics": (*IMAGE_METRICS, "memorization"),
}
MNIST_DEFAULTS: dict[str, Any] = {
    **_IMAGE_COMMON,
    "data_dir": None,
    "n_real": 60000,
    "n_synthetic": 60000,
    "n_test": 10000,
    "n_eval": 10000,
    "model": "ddpm",
    "model_kwargs": {
        "widths": (32, 64, 64),
        "attention_levels": (1,),
        "initial_images": 3_000_000,
        "images_per_generation": None,
        "batch_size": 128,
        "lr": 2e-4,
        "sample_steps": 50,
    },
    "features": "mnist-cnn",
    "metrics": IMAGE_METRICS,
}
CIFAR_DEFAULTS: dict[str, Any] = {
    **_IMAGE_COMMON,
    "data_dir": None,
    "n_real": 50000,
    "n_synthetic": 50000,
    "n_test": 10000,
    "n_eval": 10000,
    "model": "ddpm",
    "model_kwargs": {
        "widths": (128, 256, 256, 256),
        "attention_levels": (1,),
        "initial_images": 20_000_000,
        "images_per_generation": None,
        "batch_size": 128,
        "lr": 2e-4,
        "sample_steps": 50,
    },
    "features": "inception-v3",
    "metrics": IMAGE_METRICS,
}
FFHQ64_DEFAULTS: dict[str, Any] = {
    **CIFAR_DEFAULTS,
    "n_real": 60000,
    "n_synthetic": 60000,
    "model_kwargs": {**CIFAR_DEFAULTS["model_kwargs"], "attention_levels": (2,)},
}


def fresh_v1_defaults(defaults: dict[str, Any]) -> dict[str, Any]:
    """An image world's ``*-fresh-v1`` spec: v0's, drawing half the train split each generation (v0's
    whole split made every draw the same images)."""
    half = defaults["n_real"] // 2
    return {**defaults, "dynamics": "fresh", "n_real": half, "n_synthetic": half}
