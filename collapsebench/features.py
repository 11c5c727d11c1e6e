"""Feature extractors for image worlds, the weights manifest, and the real-feature cache.

Fréchet distance and precision/recall/density/coverage on images are computed on features:

- ``digits-cnn``: a small CNN trained on the Digits train split (``baselines/train_feature_net.py``);
  its weights ship with the package (``collapsebench/weights/``).
- ``mnist-cnn``: the same network trained on MNIST by the same script, from your MNIST files
  (MNIST itself cannot ship here, so neither can these weights).
- ``inception-v3``: Inception-v3 pool3 (2048-d), the standard FID network, through torch-fidelity
  (the ``[fid]`` extra), from the converted TensorFlow weights in a local file.
- ``dinov2-vits14`` / ``dinov2-vitb14`` / ``dinov2-vitl14``: the DINOv2 class token (384/768/1024-d),
  through transformers (the ``[dinov2]`` extra), from the Hugging Face ``model.safetensors`` in a local
  file. ``dinov2-vitl14`` is FD_DINOv2's network (Stein et al., 2023, "Exposing flaws of generative
  model evaluation metrics").

Weights are never fetched. Each entry of ``WEIGHTS`` names its file, its sha256 (or the published
prefix of it), where to put it, and an environment variable that may point at it; a file whose hash
does not match is an error. Features come back as float64, computed in fixed-size batches; an
extractor's ``version`` (weights hash, torch and library versions) is recorded with every run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from collapsebench.datasets import CorruptDataError, MissingDataError
from collapsebench.registry import Registry

WEIGHTS_ENV_VAR = "COLLAPSEBENCH_WEIGHTS"
CACHE_ENV_VAR = "COLLAPSEBENCH_CACHE"


class WeightsError(FileNotFoundError):
    """A weights file is missing, or is not the file its manifest entry names."""


# What a run on this machine may lack or find broken: an image set, or a feature network's weights.
# Commands report these as the machine's problem, with the loader's instructions, not as a bug.
UNAVAILABLE_INPUT_ERRORS: tuple[type[Exception], ...] = (MissingDataError, CorruptDataError, WeightsError)


@dataclass(frozen=True)
class WeightsFile:
    """One manifest entry: a weights file the suite may load, and how to check it is the right one."""

    name: str
    filename: str
    sha256: str | None  # full hex digest, or a published prefix of it (torch.hub's convention)
    source: str  # where the file comes from
    bundled: bool = False  # ships inside the package (collapsebench/weights/)

    @property
    def env_var(self) -> str:
        return "COLLAPSEBENCH_WEIGHTS_" + self.name.upper().replace("-", "_")

    def path(self) -> Path:
        """The file to load: ``$<env_var>``, else ``$COLLAPSEBENCH_WEIGHTS/<filename>``, else bundled."""
        if os.environ.get(self.env_var):
            candidates = [Path(os.environ[self.env_var]).expanduser()]
        else:
            candidates = []
            if os.environ.get(WEIGHTS_ENV_VAR):
                candidates.append(Path(os.environ[WEIGHTS_ENV_VAR]).expanduser() / self.filename)
            candidates.append(Path.home() / ".cache" / "collapsebench" / "weights" / self.filename)
            if self.bundled:
                candidates.append(Path(str(resources.files("collapsebench") / "weights" / self.filename)))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise WeightsError(
            f"weights '{self.name}' not found; looked for {', '.join(map(str, candidates))}. "
            f"Get {self.filename} from {self.source} and put it in ${WEIGHTS_ENV_VAR} "
            f"(or ~/.cache/collapsebench/weights/), or point ${self.env_var} at the file."
        )

    def verified_path(self) -> tuple[Path, str]:
        """The file and its full sha256, after checking it against the manifest."""
        path = self.path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if self.sha256 is not None and not digest.startswith(self.sha256):
            raise WeightsError(
                f"{path} has sha256 {digest}, but the manifest's '{self.name}' starts with {self.sha256}: "
                f"not the expected file (corrupt, or other weights). Get it again from {self.source}."
            )
        return path, digest


WEIGHTS: dict[str, WeightsFile] = {
    entry.name: entry
    for entry in (
        WeightsFile(
            "digits-cnn",
            "digits_cnn.pt",
            "878a150c669d77c90c8e01d4022789bc22430026475ad85fd174eb7cb57f7fb3",
            "python baselines/train_feature_net.py digits (the bundled file was made by exactly that)",
            bundled=True,
        ),
        WeightsFile(
            "mnist-cnn",
            "mnist_cnn.pt",
            None,  # trained locally from your MNIST files: its hash is recorded with every run instead
            "python baselines/train_feature_net.py mnist --data-dir DIR --out "
            "~/.cache/collapsebench/weights/mnist_cnn.pt",
        ),
        WeightsFile(
            "inception-v3",
            "weights-inception-2015-12-05-6726825d.pth",
            "6726825d",  # the published sha256 prefix (the file name carries it, torch.hub style)
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
            "weights-inception-2015-12-05-6726825d.pth (TensorFlow's FID Inception, converted)",
        ),
        *(
            WeightsFile(
                f"dinov2-vit{size}14",
                f"dinov2-{repo}.safetensors",
                None,  # no published hash to check against: the file's sha256 is recorded with every run
                f"https://huggingface.co/facebook/dinov2-{repo}/resolve/main/model.safetensors "
                f"(saved as dinov2-{repo}.safetensors)",
            )
            for size, repo in (("s", "small"), ("b", "base"), ("l", "large"))
        ),
    )
}


def _versions(*packages: str) -> str:
    parts = []
    for name in packages:
        try:
            parts.append(f"{name}={package_version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name}=?")
    return ",".join(parts)


def pick_device(device: str = "auto") -> Any:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class FeatureExtractor(ABC):
    """Images (n, C, H, W) uint8 → features (n, d) float64, in batches of a fixed size."""

    name: str
    batch_size: int = 500

    def __init__(self, device: str = "auto") -> None:
        self.device_name = device
        self._network: Any = None
        self._digest = ""

    @abstractmethod
    def load_network(self) -> tuple[Any, str]:
        """The network (eval mode, on ``self.device``) and the sha256 of its weights file."""

    @abstractmethod
    def libraries(self) -> str:
        """Versions of the libraries that compute the features."""

    @property
    def device(self) -> Any:
        return pick_device(self.device_name)

    @property
    def network(self) -> Any:
        if self._network is None:
            self._network, self._digest = self.load_network()
        return self._network

    @property
    def version(self) -> str:
        """What the features depend on: the extractor, its weights' hash, the libraries."""
        self.network  # noqa: B018 (loads the weights, hence the hash)
        return f"{self.name}:sha256={self._digest[:16]}:batch={self.batch_size}:{self.libraries()}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"{self.name} takes uint8 images (n, C, H, W), got {images.dtype} {images.shape}"
            )
        network, out = self.network, []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = self.preprocess(images[start : start + self.batch_size])
                out.append(
                    self.embed(network, torch.from_numpy(batch).to(self.device)).double().cpu().numpy()
                )
        return np.concatenate(out) if out else np.zeros((0, 0))

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """A uint8 batch on the CPU, before it goes to the device (default: as it is)."""
        return images

    @abstractmethod
    def embed(self, network: Any, batch: Any) -> Any:
        """Features of one uint8 batch on the device."""


FEATURES: Registry[FeatureExtractor] = Registry("feature extractor")


def make_features(name: str, **kwargs: Any) -> FeatureExtractor:
    return FEATURES.make(name, **kwargs)


def feature_cnn(channels: int, classes: int = 10, width: int = 32) -> Any:
    """The small classifier whose penultimate layer (4·width features) is the Digits/MNIST embedding:
    three 3×3 convolutions (width, 2·width, 4·width; the last two stride 2), global average pooling."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, classes),
    )


class CNNFeatures(FeatureExtractor):
    """Penultimate-layer features (128-d) of ``feature_cnn`` with weights from the manifest."""

    weights: str

    def load_network(self) -> tuple[Any, str]:
        import torch

        path, digest = WEIGHTS[self.weights].verified_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        network = feature_cnn(channels=int(state["0.weight"].shape[1]))
        network.load_state_dict(state)
        return network.eval().to(self.device), digest

    def libraries(self) -> str:
        return _versions("torch")

    def embed(self, network: Any, batch: Any) -> Any:
        return network[:-1](batch.float() / 127.5 - 1.0)  # all but the classifier head


@FEATURES.register("digits-cnn")
class DigitsCNNFeatures(CNNFeatures):
    name = "digits-cnn"
    weights = "digits-cnn"


@FEATURES.register("mnist-cnn")
class MNISTCNNFeatures(CNNFeatures):
    name = "mnist-cnn"
    weights = "mnist-cnn"


@FEATURES.register("inception-v3")
class InceptionFeatures(FeatureExtractor):
    """Inception-v3 pool3 (2048-d) as in the standard FID: uint8 RGB in, torch-fidelity's
    TensorFlow-compatible bilinear resize to 299×299 inside, float32 network, float64 statistics."""

    name = "inception-v3"
    batch_size = 200

    def load_network(self) -> tuple[Any, str]:
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as error:
            raise ImportError(
                "inception-v3 features need torch-fidelity (and torchvision): pip install -c constraints.txt "
                f"-e '.[fid]' ({error})"
            ) from error
        path, digest = WEIGHTS["inception-v3"].verified_path()
        # torch-fidelity loads with weights_only=False; force the safe loader (no code in weights).
        previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(path))
        finally:
            if previous is None:
                os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
            else:
                os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous
        return network.eval().to(self.device), digest

    def libraries(self) -> str:
        return _versions("torch", "torch-fidelity")

    def embed(self, network: Any, batch: Any) -> Any:
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)  # grey images (MNIST) as RGB
        (features,) = network(batch)
        return features


class DINOv2Features(FeatureExtractor):
    """The DINOv2 class token after the final layer norm, with FD_DINOv2's preprocessing (dgm-eval,
    Stein et al. 2023): RGB (grey repeated), PIL's bicubic resize of the 8-bit image to
    ``resolution``², ImageNet mean/std; float32 network, float64 statistics. The weights file is the
    Hugging Face checkpoint, read by transformers from safetensors (no code in weights), every key
    accounted for."""

    batch_size = 100
    resolution = 224
    weights: str
    architecture: ClassVar[dict[str, Any]]  # transformers' Dinov2Config fields, as in the hub's config

    def load_network(self) -> tuple[Any, str]:
        try:
            import torch
            from transformers import Dinov2Config, Dinov2Model
        except ImportError as error:
            raise ImportError(
                f"{self.name} features need transformers: pip install -c constraints.txt -e '.[dinov2]' "
                f"({error})"
            ) from error
        path, digest = WEIGHTS[self.weights].verified_path()
        # transformers reads a checkpoint folder (config + weights) and owns the renaming of the hub's
        # keys across its versions: give it one, around the verified file.
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "config.json").write_text(Dinov2Config(**self.architecture).to_json_string())
            (Path(folder) / "model.safetensors").symlink_to(path.resolve())
            try:
                network, loading = Dinov2Model.from_pretrained(
                    folder, local_files_only=True, output_loading_info=True, dtype=torch.float32
                )
            except Exception as error:  # safetensors and transformers raise many kinds
                raise WeightsError(f"{path} is not a {self.name} checkpoint: {error}") from error
        # The mask token is only used for masked training; everything else must come from the file.
        missing = set(loading["missing_keys"]) - {"embeddings.mask_token"}
        problems = {"missing": missing, **{k: loading[k] for k in ("unexpected_keys", "mismatched_keys")}}
        if any(problems.values()):
            raise WeightsError(
                f"{path} is not a {self.name} checkpoint: "
                + "; ".join(f"{kind} {sorted(map(str, keys))[:5]}" for kind, keys in problems.items() if keys)
            )
        return network.eval().to(self.device), digest

    def libraries(self) -> str:
        return _versions("torch", "transformers", "pillow")

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        from PIL import Image

        if images.shape[1] == 1:
            images = np.repeat(images, 3, axis=1)  # grey images (Digits, MNIST) as RGB
        size = (self.resolution, self.resolution)
        # PIL, as dgm-eval: its bicubic kernel (a = −0.5, antialiased) and 8-bit output, not torch's.
        resized = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).resize(size, Image.BICUBIC)
            )
            for image in images
        ]
        return np.stack(resized).transpose(0, 3, 1, 2).copy()

    def embed(self, network: Any, batch: Any) -> Any:
        images = batch.float() / 255.0
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return network(pixel_values=(images - mean) / std).pooler_output


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vit14(hidden_size: int, layers: int, heads: int) -> dict[str, Any]:
    """A DINOv2 ViT-*/14 as the hub's config.json describes it."""
    return {
        "hidden_size": hidden_size,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "patch_size": 14,
        "image_size": 518,  # the position embeddings' grid (37×37); interpolated for 224×224 inputs
        "mlp_ratio": 4,
    }


@FEATURES.register("dinov2-vits14")
class DINOv2SmallFeatures(DINOv2Features):
    name = weights = "dinov2-vits14"
    architecture = _vit14(384, layers=12, heads=6)


@FEATURES.register("dinov2-vitb14")
class DINOv2BaseFeatures(DINOv2Features):
    name = weights = "dinov2-vitb14"
    architecture = _vit14(768, layers=12, heads=12)


@FEATURES.register("dinov2-vitl14")
class DINOv2LargeFeatures(DINOv2Features):
    """FD_DINOv2's network."""

    name = weights = "dinov2-vitl14"
    architecture = _vit14(1024, layers=24, heads=16)


# ---------------------------------------------------------------------------------------- real cache
_MEMORY: dict[str, np.ndarray] = {}


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR, Path.home() / ".cache" / "collapsebench" / "features"))


def cached_features(extractor: FeatureExtractor, images: np.ndarray, key: str) -> np.ndarray:
    """Features of a fixed real image set, computed once per (set, extractor version): kept in memory
    for the process and in ``$COLLAPSEBENCH_CACHE`` (.npy, no pickle) across processes."""
    digest = hashlib.sha256(f"{key}|{extractor.version}".encode()).hexdigest()[:24]
    if digest in _MEMORY:
        return _MEMORY[digest]
    path = cache_dir() / f"{extractor.name}-{digest}.npy"
    features: np.ndarray | None = None
    if path.is_file():
        try:
            features = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            features = None  # a torn write from a killed process: recompute
        if features is not None and features.shape[0] != len(images):
            features = None
    if features is None:
        features = extractor(images)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(temporary, features)
        os.replace(temporary, path)
    _MEMORY[digest] = features
    return features
