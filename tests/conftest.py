from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import collapsebench as cb

# Small budgets for rollouts in tests; the specs keep the real ones.
TINY = {"n_test": 40, "n_eval": 40, "generations": 3}
# Scoring only std_ratio on ten items: for the Gaussian tests that read nothing but the fitted spread.
STD_RATIO_ONLY = {"n_test": 10, "n_eval": 10, "metrics": ("std_ratio",), "headline_metric": "std_ratio"}


# Flows train for thousands of steps in the specs; a few dozen are enough to exercise the contract.
TINY_FLOW = {"initial_steps": 30, "steps": 10, "batch_size": 64, "hidden": 16}


# Image models: a 3-level UNet of 4-8 channels without attention (the mid-block's self-attention
# then runs at 1/4 resolution), a few dozen images seen, two sampling steps.
TINY_UNET = {
    "widths": (4, 4, 8),
    "attention_levels": (),
    "layers_per_block": 1,
    "initial_images": 32,
    "images_per_generation": 16,
    "batch_size": 16,
    "sample_steps": 2,
    "sample_batch_size": 64,
}
TINY_MLP = {"hidden": 32, "depth": 1, "initial_images": 256, "images_per_generation": 64, "sample_steps": 2}


def pooled_features(images: np.ndarray) -> np.ndarray:
    """Cheap test features for image worlds whose real extractor needs files the tests lack
    (mnist-cnn weights, Inception): 4×4 average-pooled pixels."""
    n, channels, height, width = images.shape
    blocks = images.reshape(n, channels, 4, height // 4, 4, width // 4).astype(np.float64)
    return blocks.mean(axis=(3, 5)).reshape(n, -1)


def fast_model(env_id: str) -> dict:
    """Overrides that keep an env's spec but make it affordable in tests: flows and image models get
    tiny budgets; image worlds read the small real-format files of ``image_data`` (fewer images)."""
    spec_kwargs = cb.spec(env_id).kwargs
    model_kwargs = spec_kwargs.get("model_kwargs") or {}
    if spec_kwargs["model"] in ("realnvp", "spline-flow"):
        return {"model_kwargs": {**model_kwargs, **TINY_FLOW}}
    if spec_kwargs["model"] in ("mlp-flow-matching", "mlp-diffusion"):
        return {"model_kwargs": {**model_kwargs, **TINY_MLP}, "n_test": 40, "n_eval": 40}
    if spec_kwargs["model"] in ("ddpm", "flow-matching"):
        return {
            "model_kwargs": {**model_kwargs, **TINY_UNET},
            "n_real": 60,
            "n_synthetic": 60,
            "n_test": 40,
            "n_eval": 40,
            "features": pooled_features,
        }
    return {}


def tiny_overrides(env_id: str) -> dict:
    overrides = {**fast_model(env_id), **TINY}
    spec_kwargs = cb.spec(env_id).kwargs
    if spec_kwargs["n_real"] > 100:
        overrides.update(n_real=60, n_synthetic=60)
    return overrides


# A third-party policy, as a plugin package would ship it (see ``write_plugin``).
HALF_WEIGHT_PLUGIN = '''
import numpy as np

import collapsebench as cb


@cb.register_policy("half-weight-synthetic")
class HalfWeightSynthetic(cb.CurationPolicy):
    """Real items at weight 1, synthetic ones at 1/2."""

    def __call__(self, obs):
        pool = cb.PoolView(obs)
        return np.where(pool.real, 1.0, np.where(pool.synthetic, 0.5, 0.0))
'''


def write_plugin(folder: Path, module: str, source: str) -> dict[str, str]:
    """A third-party plugin as an installed package looks to Python: the module, plus the metadata
    (``*.dist-info``) that declares it in the ``collapsebench.plugins`` entry-point group. Returns the
    environment of a process that has it on its path, as ``pip install`` would."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    metadata = folder / f"{module}-0.1.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (metadata / "entry_points.txt").write_text(f"[collapsebench.plugins]\n{module} = {module}\n")
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def rollout(env, policy, seed: int, steps: int | None = None) -> list[dict]:
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    infos = []
    truncated = False
    while not truncated and (steps is None or len(infos) < steps):
        obs, _, _, truncated, info = env.step(policy(obs))
        infos.append(info)
    return infos


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# Small files in the real formats, read through the real loaders (checksums included: the published
# md5s are swapped for these files' own, so verification runs too).
IMAGE_COUNTS = {"train": 80, "test": 50, "ffhq": 280}


def write_image_files(root: Path) -> dict[str, str]:
    """MNIST idx.gz, an extracted CIFAR-10 folder and an FFHQ-64 PNG folder under ``root``; returns
    the md5 of each checksummed file."""
    from PIL import Image

    from collapsebench import datasets

    rng = np.random.default_rng(0)
    md5 = {}
    mnist = root / "mnist"
    mnist.mkdir(parents=True)
    for split, count in (("train", IMAGE_COUNTS["train"]), ("t10k", IMAGE_COUNTS["test"])):
        images = mnist / f"{split}-images-idx3-ubyte.gz"
        labels = mnist / f"{split}-labels-idx1-ubyte.gz"
        datasets.write_idx(images, rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        datasets.write_idx(labels, rng.integers(0, 10, count).astype(np.uint8))
        md5 |= {path.name: datasets.file_md5(path) for path in (images, labels)}
    cifar = root / "cifar-10" / datasets.CIFAR10_FOLDER
    cifar.mkdir(parents=True)
    per_batch = IMAGE_COUNTS["train"] // 5
    for name, count in [(name, per_batch) for name in datasets.CIFAR10_TRAIN_BATCHES] + [
        ("test_batch", IMAGE_COUNTS["test"])
    ]:
        images = rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)
        datasets.write_cifar10_batch(cifar / name, images, rng.integers(0, 10, count))
        md5[name] = datasets.file_md5(cifar / name)
    ffhq = root / "ffhq64"
    ffhq.mkdir()
    for index in range(IMAGE_COUNTS["ffhq"]):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(ffhq / f"{index:05d}.png")
    return md5


@pytest.fixture(scope="session", autouse=True)
def image_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test sees a data directory of small real-format files and a private feature cache."""
    from collapsebench import datasets

    root = tmp_path_factory.mktemp("data")
    md5 = write_image_files(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(datasets.DATA_ENV_VAR, str(root))
        patch.setenv("COLLAPSEBENCH_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
        for table in (datasets.MNIST_MD5, datasets.CIFAR10_MD5):
            for name in list(table):
                if name in md5:
                    patch.setitem(table, name, md5[name])
        yield root
