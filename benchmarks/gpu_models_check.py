"""GPU check of the image models: sampling throughput of the CIFAR UNet through ``model.sample``,
and DDPM vs flow matching quality on real Digits (a UNet at 8×8), scored like the Digits envs."""

import time

import numpy as np

import collapsebench as cb
from collapsebench.datasets import load_digits_images
from collapsebench.features import make_features
from collapsebench.metrics import frechet_distance, gaussian_statistics, precision_recall_density_coverage
from collapsebench.models import WeightedData

images = np.random.default_rng(0).integers(0, 256, (2000, 3, 32, 32), dtype=np.uint8)
noise_data = WeightedData.uniform(images)
for compiled in (False, True):
    model = cb.make_model("ddpm", initial_images=128, sample_steps=10, compile=compiled)
    model.fit(noise_data, np.random.default_rng(0))
    model.sample(1000, np.random.default_rng(0))  # warm-up (and compilation)
    model.sample(5000, np.random.default_rng(1))
    rate = model.last_sample["samples_per_s"] * model.sample_steps
    print(f"CIFAR ddpm sample(), compile={compiled}: {rate:.0f} network evaluations/s", flush=True)

digits = load_digits_images()
features = make_features("digits-cnn")
real = features(digits.test)
train = WeightedData.uniform(digits.train)
unet = {"widths": (64, 128), "attention_levels": (), "layers_per_block": 2, "batch_size": 128, "lr": 3e-4}
for name in ("flow-matching", "ddpm"):
    model = cb.make_model(name, initial_images=150_000, **unet)
    started = time.perf_counter()
    model.fit(train, np.random.default_rng(0))
    fit_s = time.perf_counter() - started
    fake = features(model.sample(len(digits.test), np.random.default_rng(1)))
    fd = frechet_distance(*gaussian_statistics(fake), *gaussian_statistics(real))
    prdc = precision_recall_density_coverage(real, fake, 5)
    print(f"Digits {name} UNet(64,128): fit {fit_s:.0f} s, FD {fd:.1f}, {prdc}", flush=True)
