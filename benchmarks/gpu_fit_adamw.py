"""The CIFAR fit loop itself (``model.fit``, compiled, 100k-image pool, 50k images per generation)
with torch's default AdamW (foreach kernels on CUDA) and with ``fused=True``; foreach runs again last
so that warm-up and clock effects show.

    python benchmarks/gpu_fit_adamw.py
"""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
import torch

import collapsebench as cb
from collapsebench.models import WeightedData

images = np.random.default_rng(0).integers(0, 256, (100_000, 3, 32, 32), dtype=np.uint8)
pool = WeightedData.uniform(images)
model = cb.make_model("ddpm", initial_images=12_800, images_per_generation=50_000, compile=True)
model.fit(pool, np.random.default_rng(0))  # builds and compiles
default_adamw = torch.optim.AdamW
for fused in (False, True, False):
    with mock.patch.object(torch.optim, "AdamW", functools.partial(default_adamw, fused=fused or None)):
        model.fit(pool, np.random.default_rng(1))
    print(f"fit 50k images, fused={fused}: {model.last_fit['images_per_s']:.0f} images/s", flush=True)
