"""Where a CIFAR generation's time can go down without changing the protocol: sampling throughput of
``model.sample`` (DDIM, bf16 EMA copy, compiled) by sample batch size and memory layout, and the
training step with AdamW's foreach vs fused kernels. Prints one line per variant.

    python benchmarks/gpu_levers.py [--skip-layouts]
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch

import collapsebench as cb
from collapsebench.baselines.diffusion import _Cast
from collapsebench.models import WeightedData

images = np.random.default_rng(0).integers(0, 256, (4096, 3, 32, 32), dtype=np.uint8)
noise_data = WeightedData.uniform(images)

# 1. sampling: network evaluations per second through model.sample (compiled, 10 DDIM steps)
variants = () if "--skip-layouts" in sys.argv else ((1000, False), (2500, False), (1000, True))
for batch, channels_last in variants:
    model = cb.make_model(
        "ddpm",
        initial_images=128,
        sample_steps=10,
        compile=True,
        sample_batch_size=batch,
        channels_last=channels_last,
    )
    model.fit(noise_data, np.random.default_rng(0))
    started = time.perf_counter()
    model.sample(batch, np.random.default_rng(0))  # compiles
    compile_s = time.perf_counter() - started
    model.sample(10 * batch, np.random.default_rng(1))
    rate = model.last_sample["samples_per_s"] * model.sample_steps
    print(
        f"sample batch={batch} channels_last={channels_last}: {rate:.0f} network evaluations/s "
        f"(first call {compile_s:.0f} s)",
        flush=True,
    )

# 1b. sampling through CUDA graphs (torch.compile's reduce-overhead mode), batch 1000
model = cb.make_model("ddpm", initial_images=128, sample_steps=10)
model.fit(noise_data, np.random.default_rng(0))
bf16_copy = copy.deepcopy(model._fitted()).to(torch.bfloat16)
model._sampler = torch.compile(_Cast(bf16_copy, torch.bfloat16).eval(), mode="reduce-overhead")
started = time.perf_counter()
model.sample(2000, np.random.default_rng(0))  # compiles, records the graphs
compile_s = time.perf_counter() - started
model.sample(10_000, np.random.default_rng(1))
rate = model.last_sample["samples_per_s"] * model.sample_steps
print(f"sample batch=1000 cuda graphs: {rate:.0f} evaluations/s (first calls {compile_s:.0f} s)", flush=True)

# 2. training: the fit loop's step, compiled network, AdamW foreach vs fused (foreach again last, so
#    that warm-up and clock effects show)
model = cb.make_model("ddpm", initial_images=128, compile=True)
model.fit(noise_data, np.random.default_rng(0))
network = model._network.train()
trained = torch.compile(network)
pixels = torch.from_numpy(images).cuda()
weights = torch.full((len(images),), 1.0, device="cuda", dtype=torch.float64)
generator = torch.Generator(device="cuda").manual_seed(0)
for fused in (False, True, False):
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-4, weight_decay=0.0, fused=fused)

    def step(optimizer: torch.optim.Optimizer = optimizer) -> None:
        index = torch.multinomial(weights, 128, replacement=True, generator=generator)
        batch = pixels[index].float() / 127.5 - 1.0
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.loss(trained, batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        model._update_ema(network)

    for _ in range(30):  # warm-up (compilation on the first)
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(200):
        step()
    torch.cuda.synchronize()
    rate = 200 * 128 / (time.perf_counter() - started)
    print(f"train step batch=128 compiled fused={fused}: {rate:.0f} images/s", flush=True)
