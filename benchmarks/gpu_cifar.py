"""Throughput of one CIFAR generation on a GPU: the performance goal of the image worlds.

    python benchmarks/gpu_cifar.py --generations 1 --initial-images 200000 --out results/gpu-cifar.json
    python benchmarks/gpu_cifar.py --fake-data --random-inception ...  # no CIFAR-10 / Inception files

Runs ``CIFAR-{dynamics}-v0`` at the seed protocol's per-generation budget (50k real, |synthetic| =
|real|, one epoch of the training pool, 50k + 10k DDIM-50 samples, FID and PRDC on 10k) for each
(policy, dynamics) below, with a reduced generation-0 budget, and reports per stage the wall time
(``env.last_step_seconds``), training images/s and samples/s, plus the metrics.

``--fake-data`` writes CIFAR-format files of uniform noise (throughput only: its metrics mean
nothing). ``--random-inception`` builds Inception-v3 with random weights and turns the manifest's
hash check off *for this process only*: the network costs the same time, the FID values mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-dir", type=Path, default=None)
parser.add_argument("--fake-data", action="store_true")
parser.add_argument("--random-inception", action="store_true")
parser.add_argument("--generations", type=int, default=1)
parser.add_argument("--initial-images", type=int, default=200_000)
parser.add_argument("--policies", default="lambda-mix:1.0", help="comma list of POLICY[:lam]")
parser.add_argument("--model", default="ddpm")
parser.add_argument("--compile", action="store_true")
parser.add_argument("--out", type=Path, default=Path("results/gpu-cifar.json"))
args = parser.parse_args()

import torch  # noqa: E402

import collapsebench as cb  # noqa: E402
from collapsebench import datasets, features  # noqa: E402

device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
print(f"device: {device_name}, torch {torch.__version__}")

# 1. data: the real files, or CIFAR-format files of noise
data_dir = args.data_dir or Path(tempfile.mkdtemp())
if args.fake_data:
    folder = data_dir / "cifar-10" / datasets.CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in (*datasets.CIFAR10_TRAIN_BATCHES, "test_batch"):
        images = rng.integers(0, 256, size=(10_000, 3, 32, 32), dtype=np.uint8)
        datasets.write_cifar10_batch(folder / name, images, rng.integers(0, 10, 10_000))
    # the published md5s describe the real batches; these files are not them
    datasets.CIFAR10_MD5.clear()
os.environ[datasets.DATA_ENV_VAR] = str(data_dir)

# 2. Inception: the real weights file, or random weights of the same architecture (timing only)
if args.random_inception:
    from unittest import mock

    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    with (
        mock.patch.object(fidelity, "load_state_dict_from_url", return_value={}),
        mock.patch.object(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
    ):
        network = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = data_dir / "random-inception.pth"
    torch.save(network.state_dict(), path)
    entry = features.WEIGHTS["inception-v3"]
    features.WEIGHTS["inception-v3"] = dataclasses.replace(entry, sha256=None)
    os.environ[entry.env_var] = str(path)

# 3. one lineage per policy at the protocol's per-generation budget
results = []
for item in args.policies.split(","):
    name, _, lam = item.partition(":")
    dynamics = "replace" if name == "full-synthetic" else "mix"
    env_id = f"CIFAR-{dynamics}-v0"
    model_kwargs = {
        **cb.spec(env_id).kwargs["model_kwargs"],
        "initial_images": args.initial_images,
        "compile": args.compile,
    }
    if args.model != "ddpm":
        model_kwargs = {"initial_images": args.initial_images, "compile": args.compile}
    env = cb.make(env_id, generations=args.generations, model=args.model, model_kwargs=model_kwargs)
    policy = cb.make_policy(name, **({"lam": float(lam)} if lam else {}))
    started = time.perf_counter()
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    print(f"{env_id} + {policy.name}{policy.params}: reset {time.perf_counter() - started:.1f} s", flush=True)
    for generation in range(args.generations + 1):
        obs, _, _, _, info = env.step(policy(obs))
        model = env.unwrapped.model
        record = {
            "env": env_id,
            "policy": policy.name,
            "params": policy.params,
            "model": args.model,
            "generation": generation,
            "seconds": env.unwrapped.last_step_seconds,
            "total_s": sum(env.unwrapped.last_step_seconds.values()),
            "fit": model.last_fit,
            "sample": model.last_sample,
            "metrics": info["metrics"],
            "n_train": info["n_train"],
            "parameters": model.n_parameters,
        }
        results.append(record)
        print(json.dumps(record), flush=True)

args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps(results, indent=1))
print(f"wrote {args.out}")
