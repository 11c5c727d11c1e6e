"""Real image data sets, read from local files in their published formats (nothing is downloaded).

==========  ==============================================================  ===================
data set    files, under the data directory                                 checksums verified
==========  ==============================================================  ===================
Digits      none: scikit-learn's ``load_digits`` (1,797 8×8 images) ships    -
            with the package
MNIST       ``mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``      md5 of the .gz files
CIFAR-10    ``cifar-10/cifar-10-python.tar.gz`` or the extracted             md5 of the tarball,
            ``cifar-10/cifar-10-batches-py/``                                or of each batch
FFHQ-64     ``ffhq64/*.png``, 64×64 RGB                                     - (none published)
==========  ==============================================================  ===================

The data directory is the ``data_dir`` argument, else ``$COLLAPSEBENCH_DATA``, else
``~/.cache/collapsebench/data``. Missing or corrupt files raise an error that names the file, where it
goes and where to get it. Images are uint8 arrays (n, channels, height, width); every set has a fixed
train/test split (the published one where there is one), so the real test statistics of an env are
the same for every seed and can be cached.

CIFAR-10's batches are Python pickles. They are read by an unpickler that resolves nothing but the
three numpy names an array needs, so a tampered file fails to load instead of running code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_ENV_VAR = "COLLAPSEBENCH_DATA"


class MissingDataError(FileNotFoundError):
    """A data file the env needs is not on disk."""


class CorruptDataError(ValueError):
    """A data file is there but is not what the format (or its published checksum) says."""


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where data sets are read from: ``data_dir``, else ``$COLLAPSEBENCH_DATA``, else a user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "collapsebench" / "data"


@dataclass(frozen=True)
class ImageArrays:
    """A loaded image data set: fixed train and test splits, uint8 (n, C, H, W), with class labels."""

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    source: str  # where the images came from and what was verified, for results records

    def __post_init__(self) -> None:
        for split in (self.train, self.test):
            if split.dtype != np.uint8 or split.ndim != 4:
                raise CorruptDataError(f"{self.name}: images must be uint8 (n, C, H, W), got {split.shape}")
        if self.train.shape[1:] != self.test.shape[1:]:
            raise CorruptDataError(f"{self.name}: train {self.train.shape} and test {self.test.shape} differ")


@dataclass(frozen=True)
class ImageSplit:
    """One episode's real data: the first ``n_test`` images of the fixed test split, and training draws
    (without replacement) from the fixed train split."""

    test: np.ndarray
    train: np.ndarray
    cache_key: str  # identifies ``test`` across episodes and processes (real-feature cache)

    def draw_train(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n > len(self.train):
            raise ValueError(f"asked for {n} real training images, the train split has {len(self.train)}")
        return self.train[np.sort(rng.choice(len(self.train), size=n, replace=False))]


@dataclass
class ImageDataset:
    """A ``RealData`` source of images, loaded once per process and shared by every env that uses it."""

    name: str
    load: Callable[[], ImageArrays] = field(repr=False)
    dtype: type = np.uint8
    population_covariance: None = None
    _arrays: ImageArrays | None = field(default=None, repr=False)

    @property
    def arrays(self) -> ImageArrays:
        if self._arrays is None:
            self._arrays = self.load()
        return self._arrays

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.arrays.train.shape[1:])

    def split(self, n_test: int, rng: np.random.Generator) -> ImageSplit:
        arrays = self.arrays
        if n_test > len(arrays.test):
            raise ValueError(f"{self.name} has {len(arrays.test)} test images; n_test={n_test} asks for more")
        test = arrays.test[:n_test]
        digest = hashlib.sha256(test.tobytes()).hexdigest()[:16]
        return ImageSplit(test=test, train=arrays.train, cache_key=f"{self.name}:{n_test}:{digest}")


_LOADED: dict[tuple[str, str], ImageArrays] = {}


def shared(name: str, root: Path, load: Callable[[], ImageArrays]) -> ImageDataset:
    """An ``ImageDataset`` whose arrays are read from disk once per process per (set, directory)."""

    def cached_load() -> ImageArrays:
        key = (name, str(root.resolve()) if root.exists() else str(root))
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]

    return ImageDataset(name, cached_load)


# ---------------------------------------------------------------------------------------- checksums
def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str | None, help_text: str) -> str:
    """Check ``path`` against its published md5 (None: the format publishes none). Returns a note."""
    if expected is None:
        return f"{path.name} (no published checksum)"
    actual = file_md5(path)
    if actual != expected:
        raise CorruptDataError(
            f"{path} has md5 {actual}, but the published file has {expected}: the file is corrupt, "
            f"truncated or a different version. {help_text}"
        )
    return f"{path.name} md5 ok"


def _missing(what: str, where: Path, help_text: str) -> MissingDataError:
    return MissingDataError(
        f"{what} not found: expected {where}. {help_text} Point collapsebench at another data "
        f"directory with --data-dir or ${DATA_ENV_VAR}."
    )


# ---------------------------------------------------------------------------------------- Digits
DIGITS_TEST_SIZE = 497  # 1,797 = 1,300 train + 497 test, by a fixed permutation (seed 0)


def load_digits_images() -> ImageArrays:
    """scikit-learn's 8×8 digits (values 0-16) rescaled to uint8 0-255, one channel."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    labels = digits.target.astype(np.int64)
    return ImageArrays(
        "Digits", images[train], images[test], labels[train], labels[test], "sklearn.datasets.load_digits"
    )


def digits() -> ImageDataset:
    return shared("Digits", Path("<sklearn>"), load_digits_images)


# ---------------------------------------------------------------------------------------- MNIST
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_MD5 = {  # of the .gz files as published (LeCun et al.; the values torchvision checks)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_HELP = (
    "Put the four MNIST idx files (gzipped as published, or uncompressed) in <data>/mnist/: "
    + ", ".join(f"{name}.gz" for name in MNIST_FILES.values())
    + "."
)
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's format: magic 0 0 type ndim, big-endian int32 dims, then the data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        kind = "gzip" if path.suffix == ".gz" else "idx"
        raise CorruptDataError(f"{path} cannot be read as {kind}: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise CorruptDataError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path}: idx header truncated")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CorruptDataError(
            f"{path}: header says shape {shape} ({expected} bytes of data), file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an idx file (gzipped if ``path`` ends in .gz): e.g. samples in MNIST's format."""
    codes = {np.dtype(dtype).str: code for code, dtype in _IDX_TYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, codes[np.dtype(dtype).str], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, dtype=dtype).tobytes())


def load_mnist(root: Path, checksums: Mapping[str, str] = MNIST_MD5) -> ImageArrays:
    folder = root / "mnist"
    arrays, notes = {}, []
    for key, stem in MNIST_FILES.items():
        gz, plain = folder / f"{stem}.gz", folder / stem
        if gz.exists():
            notes.append(verify_md5(gz, checksums.get(gz.name), MNIST_HELP))
            path = gz
        elif plain.exists():
            notes.append(f"{plain.name} (uncompressed: no published checksum)")
            path = plain
        else:
            raise _missing(f"MNIST file {stem}[.gz]", gz, MNIST_HELP)
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CorruptDataError(
                f"MNIST {split}: images {images.shape} and labels {labels.shape} do not match"
            )
    return ImageArrays(
        "MNIST",
        np.ascontiguousarray(arrays["train_images"][:, None]),
        np.ascontiguousarray(arrays["test_images"][:, None]),
        arrays["train_labels"].astype(np.int64),
        arrays["test_labels"].astype(np.int64),
        f"{folder}: " + ", ".join(notes),
    )


def mnist(data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    root = data_root(data_dir)
    return shared("MNIST", root, lambda: load_mnist(root))


# ---------------------------------------------------------------------------------------- CIFAR-10
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_MD5 = {  # as published with the data set (the values torchvision checks)
    CIFAR10_TARBALL: "c58f30108f718f92721af3b95e74349a",
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_HELP = (
    "Download the CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar.html) and put "
    f"{CIFAR10_TARBALL} (or the extracted {CIFAR10_FOLDER}/ folder) in <data>/cifar-10/."
)


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only what a pickled numpy array needs; any other global is refused, never imported."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3's protocol 2 spells bytes; a pure function
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise CorruptDataError(
                f"refusing to unpickle {module}.{name}: a CIFAR-10 batch holds only arrays, lists and bytes"
            )
        if module == "numpy.core.multiarray":  # numpy ≥ 2 moved it; the batches were written before
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def read_cifar_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (images uint8 (n, 3, 32, 32), labels int64 (n,))."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except CorruptDataError:
        raise
    except Exception as error:  # a truncated or foreign file: pickle raises many kinds
        raise CorruptDataError(f"CIFAR-10 batch {name} cannot be read: {error!r}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise CorruptDataError(f"CIFAR-10 batch {name} has no b'data' / b'labels' entries")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise CorruptDataError(
            f"CIFAR-10 batch {name}: data {data.shape} {data.dtype}, labels {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def write_cifar10_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write uint8 (n, 3, 32, 32) images in CIFAR-10's python batch format (a protocol-2 pickle of a
    dict with bytes keys, as the published files are)."""
    batch = {
        b"batch_label": path.name.encode(),
        b"labels": [int(label) for label in labels],
        b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), 3072),
        b"filenames": [f"{i:05d}.png".encode() for i in range(len(images))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def load_cifar10(root: Path, checksums: Mapping[str, str] = CIFAR10_MD5) -> ImageArrays:
    folder = root / "cifar-10"
    tarball, extracted = folder / CIFAR10_TARBALL, folder / CIFAR10_FOLDER
    batches: dict[str, bytes] = {}
    names = (*CIFAR10_TRAIN_BATCHES, "test_batch")
    if tarball.exists():
        note = verify_md5(tarball, checksums.get(CIFAR10_TARBALL), CIFAR10_HELP)
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                for name in names:
                    member = archive.extractfile(f"{CIFAR10_FOLDER}/{name}")
                    if member is None:
                        raise KeyError(name)
                    batches[name] = member.read()
        except KeyError as error:
            raise CorruptDataError(
                f"{tarball} has no {CIFAR10_FOLDER}/{error.args[0]}. {CIFAR10_HELP}"
            ) from None
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CorruptDataError(f"{tarball} is not a readable .tar.gz ({error}). {CIFAR10_HELP}") from None
        source = f"{tarball}: {note}"
    elif extracted.is_dir():
        notes = []
        for name in names:
            path = extracted / name
            if not path.exists():
                raise _missing(f"CIFAR-10 batch {name}", path, CIFAR10_HELP)
            notes.append(verify_md5(path, checksums.get(name), CIFAR10_HELP))
            batches[name] = path.read_bytes()
        source = f"{extracted}: " + ", ".join(notes)
    else:
        raise _missing("CIFAR-10", tarball, CIFAR10_HELP)
    train = [read_cifar_batch(batches[name], name) for name in CIFAR10_TRAIN_BATCHES]
    test_images, test_labels = read_cifar_batch(batches["test_batch"], "test_batch")
    return ImageArrays(
        "CIFAR-10",
        np.concatenate([images for images, _ in train]),
        test_images,
        np.concatenate([labels for _, labels in train]),
        test_labels,
        source,
    )


def cifar10(data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    root = data_root(data_dir)
    return shared("CIFAR-10", root, lambda: load_cifar10(root))


# ---------------------------------------------------------------------------------------- folders
FFHQ64_HELP = (
    "Put FFHQ at 64×64 as PNG files in <data>/ffhq64/ (e.g. the 70,000 images of the FFHQ "
    "thumbnails128x128 set, resized to 64×64 with a box or Lanczos filter)."
)


def load_image_folder(
    folder: Path, size: tuple[int, int], mode: str = "RGB", test_fraction: float = 1 / 7, help_text: str = ""
) -> ImageArrays:
    """Every ``*.png`` in ``folder`` (sorted by name); the last ``test_fraction`` of them are the test split.

    Each file must already be ``size`` (width, height) in ``mode``: resizing is part of a data set's
    definition, so it is done once, outside the benchmark, not silently here.
    """
    from PIL import Image

    if not folder.is_dir():
        raise _missing(f"image folder {folder.name}", folder, help_text)
    files = sorted(folder.glob("*.png"))
    if len(files) < 2:
        raise _missing(f"PNG images in {folder}", folder / "00000.png", help_text)
    images, wrong = [], []
    for path in files:
        try:
            with Image.open(path) as image:
                if image.size != size or image.mode != mode:
                    wrong.append(f"{path.name} ({image.mode} {image.size[0]}×{image.size[1]})")
                    continue
                images.append(np.asarray(image, dtype=np.uint8))
        except OSError as error:
            wrong.append(f"{path.name} (unreadable: {error})")
    if wrong:
        raise CorruptDataError(
            f"{len(wrong)} of {len(files)} files in {folder} are not {mode} {size[0]}×{size[1]} PNGs, e.g. "
            + ", ".join(wrong[:5])
            + f". {help_text}"
        )
    stacked = np.stack(images)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    n_test = max(1, round(len(stacked) * test_fraction))
    no_labels = np.full(len(stacked), -1, dtype=np.int64)
    return ImageArrays(
        folder.name,
        np.ascontiguousarray(stacked[:-n_test]),
        np.ascontiguousarray(stacked[-n_test:]),
        no_labels[:-n_test],
        no_labels[-n_test:],
        f"{folder}: {len(files)} PNG files (no published checksum)",
    )


def ffhq64(data_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
    root = data_root(data_dir)
    return shared(
        "FFHQ-64", root, lambda: load_image_folder(root / "ffhq64", (64, 64), help_text=FFHQ64_HELP)
    )
