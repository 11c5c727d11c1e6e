"""Fitted first models, shared by every lineage that starts from the same data.

Generation 0 trains a fresh model on the real data alone, so every agent of a grid with the same env,
model and seed trains the same first model, and on the image worlds it is the dearest fit of the
lineage (Digits: 300k images, against 40k per later generation; CIFAR-10: 20M, against one epoch).
``FirstModelCache`` keeps each fitted state in a folder under a key that digests everything the fit
reads: the model's class and the parameters of its fit, the training items and their weights, the
fit's random stream, and the software and thread settings that decide its floating point. A hit
restores the bits a fit would have produced (the state dicts are what checkpoints resume from), so
results are the same with and without the cache. Files are ``.npz`` of numeric arrays, never
pickled; a folder belongs to one machine, like the store's checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from collapsebench.executors import THREAD_VARIABLES
from collapsebench.models import GenerativeModel, WeightedData
from collapsebench.store import canonical_json, read_arrays, write_arrays


@functools.cache  # reading package metadata costs milliseconds; it does not change in a process
def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("collapsebench", "numpy", "torch", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _software() -> dict[str, object]:
    """What decides a fit's floating point besides its inputs (read without importing torch)."""
    return {
        "packages": _package_versions(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        # Thread settings change the order of floating-point reductions.
        "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }


class FirstModelCache:
    """A folder of fitted first models; ``fit`` trains or restores. ``hits`` and ``misses`` count
    this instance's lookups."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.hits = self.misses = 0

    def key(self, model: GenerativeModel, data: WeightedData, rng: np.random.Generator) -> str:
        """The digest of everything ``model.fit(data, rng)`` reads. Parameters are identified as run
        keys identify them (``canonical_json``: a callable by its import path)."""
        settings = canonical_json(
            {
                "model": f"{type(model).__module__}.{type(model).__qualname__}",
                "params": model.fit_params,  # a first model serves every sampling temperature
                "rng": rng.bit_generator.state,
                "software": _software(),
            }
        )
        digest = hashlib.sha256(settings.encode())
        for array in (data.samples, data.weights):
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def fit(self, model: GenerativeModel, data: WeightedData, rng: np.random.Generator) -> bool:
        """Fit the fresh ``model`` on ``data``, or restore the state of that same fit from the folder;
        True on a restore. An unreadable or unwritable folder only costs the fit."""
        key = self.key(model, data, rng)
        state = None
        with contextlib.suppress(OSError, ValueError, EOFError, zipfile.BadZipFile):  # absent or damaged
            state = read_arrays(self.path(key))
        if state is None:
            self.misses += 1
            model.fit(data, rng)
            self._save(key, model.state_dict())
            return False
        model.load_state_dict(state)
        self.hits += 1
        return True

    def _save(self, key: str, state: dict[str, np.ndarray]) -> None:
        # Workers that fit the same first model at once each rename a whole file (identical contents).
        with contextlib.suppress(OSError):
            write_arrays(self.path(key), state)
