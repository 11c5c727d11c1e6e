"""Image data sets: the real loaders on small files in the real formats, their checksums and errors."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from collapsebench import datasets
from collapsebench.datasets import CorruptDataError, MissingDataError

from conftest import IMAGE_COUNTS


def test_digits_is_embedded_with_a_fixed_split():
    first, second = datasets.load_digits_images(), datasets.load_digits_images()
    assert first.train.shape == (1300, 1, 8, 8) and first.test.shape == (497, 1, 8, 8)
    assert first.train.dtype == np.uint8 and first.train.max() == 255 and first.train.min() == 0
    assert np.array_equal(first.test, second.test)
    assert set(np.unique(first.test_labels)) == set(range(10))


def test_mnist_idx_files_load_and_are_checksummed(image_data):
    arrays = datasets.load_mnist(image_data)
    assert arrays.train.shape == (IMAGE_COUNTS["train"], 1, 28, 28)
    assert arrays.test.shape == (IMAGE_COUNTS["test"], 1, 28, 28)
    assert "md5 ok" in arrays.source
    with gzip.open(image_data / "mnist" / "t10k-images-idx3-ubyte.gz") as handle:
        raw = handle.read()
    assert np.array_equal(arrays.test.reshape(-1), np.frombuffer(raw, np.uint8, offset=16))


def test_mnist_reports_a_wrong_checksum_and_a_missing_file(image_data, tmp_path):
    shutil.copytree(image_data / "mnist", tmp_path / "mnist")
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte.gz has md5 .* published file has"):
        datasets.load_mnist(
            tmp_path, checksums={**datasets.MNIST_MD5, "train-images-idx3-ubyte.gz": "0" * 32}
        )
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MissingDataError, match=r"t10k-labels-idx1-ubyte.*expected .*mnist.*--data-dir"):
        datasets.load_mnist(tmp_path)


def test_idx_reader_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    datasets.write_idx(path, np.zeros((4, 5, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CorruptDataError, match=r"shape \(4, 5, 5\) \(100 bytes of data\), file has 97"):
        datasets.read_idx(path)
    path.write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(CorruptDataError, match="not an idx file"):
        datasets.read_idx(path)


def test_idx_reader_follows_the_published_layout(tmp_path):
    """The bytes as LeCun's page specifies them, not as our writer makes them: magic 0x00000803
    (unsigned bytes, 3 dimensions), the dimensions as big-endian int32, then the data in C order."""
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(
        b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 2, 3)) + bytes(range(12))
    )
    assert datasets.read_idx(path).tolist() == np.arange(12).reshape(2, 2, 3).tolist()


def _py2_str(text: bytes) -> bytes:
    """A Python 2 ``str`` as protocol 2 writes it (SHORT_BINSTRING, or BINSTRING when long)."""
    if len(text) < 256:
        return b"U" + bytes([len(text)]) + text
    return b"T" + struct.pack("<i", len(text)) + text


def _py2_int(n: int) -> bytes:
    return b"K" + bytes([n]) if n < 256 else b"M" + struct.pack("<H", n)


def _py2_cifar_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the published files hold one: a dict pickled by Python 2's cPickle, protocol 2,
    whose numpy array names ``numpy.core.multiarray`` and carries its pixels as a Python 2 str.
    Written opcode by opcode, so that nothing of this Python or numpy shapes it."""
    rows, columns = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
        + b"(" + _py2_int(1) + _py2_int(rows) + _py2_int(columns) + b"\x86"  # (1, shape, ...
        + b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"  # dtype('u1', 0, 1)
        + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + _py2_int(0) + b"tb"
        + b"\x89" + _py2_str(data.tobytes()) + b"tb"  # ..., not Fortran order, the pixels)
    )  # fmt: skip
    label_list = b"](" + b"".join(_py2_int(label) for label in labels) + b"e"
    entries = _py2_str(b"batch_label") + _py2_str(b"testing batch 1 of 1") + _py2_str(b"labels")
    return b"\x80\x02}(" + entries + label_list + _py2_str(b"data") + array + b"u."


def test_cifar_reads_a_batch_as_python_2_pickled_the_published_files():
    """Each row is 1024 red, then 1024 green, then 1024 blue bytes, each plane row-major (the CIFAR
    page's layout): pixel (channel c, row r, column x) is byte c·1024 + r·32 + x."""
    data = (np.arange(2 * 3072) % 251).astype(np.uint8).reshape(2, 3072)
    images, labels = datasets.read_cifar_batch(_py2_cifar_batch(data, [3, 7]), "test_batch")
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8 and labels.tolist() == [3, 7]
    for image, channel, row, column in [(0, 0, 0, 1), (0, 1, 3, 4), (1, 2, 31, 31)]:
        assert images[image, channel, row, column] == data[image, channel * 1024 + row * 32 + column]


def test_cifar_extracted_folder_and_tarball_give_the_same_images(image_data, tmp_path):
    folder = datasets.load_cifar10(image_data)
    assert folder.train.shape == (IMAGE_COUNTS["train"], 3, 32, 32)
    assert folder.test.shape == (IMAGE_COUNTS["test"], 3, 32, 32)
    (tmp_path / "cifar-10").mkdir()
    tarball = tmp_path / "cifar-10" / datasets.CIFAR10_TARBALL
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(image_data / "cifar-10" / datasets.CIFAR10_FOLDER, arcname=datasets.CIFAR10_FOLDER)
    checksums = {datasets.CIFAR10_TARBALL: datasets.file_md5(tarball)}
    packed = datasets.load_cifar10(tmp_path, checksums=checksums)
    assert np.array_equal(packed.train, folder.train) and np.array_equal(
        packed.test_labels, folder.test_labels
    )
    with pytest.raises(CorruptDataError, match=r"cifar-10-python\.tar\.gz has md5"):
        datasets.load_cifar10(tmp_path, checksums={datasets.CIFAR10_TARBALL: "f" * 32})


def test_cifar_batches_never_run_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    raw = pickle.dumps({b"data": Payload(), b"labels": []}, protocol=2)
    with pytest.raises(CorruptDataError, match=r"refusing to unpickle shutil\.rmtree"):
        datasets.read_cifar_batch(raw, "evil")
    assert (tmp_path / "victim").is_dir()
    with pytest.raises(CorruptDataError, match="cannot be read"):
        datasets.read_cifar_batch(raw[:20], "truncated")


def test_missing_cifar_says_what_to_put_where(tmp_path):
    with pytest.raises(MissingDataError, match=r"cifar-10-python.tar.gz.*cs.toronto.edu.*COLLAPSEBENCH_DATA"):
        datasets.load_cifar10(tmp_path)


def test_image_folder_loads_pngs_and_rejects_wrong_sizes(image_data, tmp_path):
    arrays = datasets.load_image_folder(image_data / "ffhq64", (64, 64))
    assert arrays.train.shape == (240, 3, 64, 64) and arrays.test.shape == (40, 3, 64, 64)
    first = np.asarray(Image.open(image_data / "ffhq64" / "00000.png"))
    assert np.array_equal(arrays.train[0], first.transpose(2, 0, 1))
    shutil.copytree(image_data / "ffhq64", tmp_path / "ffhq64")
    Image.new("RGB", (128, 128)).save(tmp_path / "ffhq64" / "zz-big.png")
    with pytest.raises(CorruptDataError, match=r"1 of 281 files .* zz-big.png \(RGB 128×128\)"):
        datasets.load_image_folder(tmp_path / "ffhq64", (64, 64))


def test_an_image_split_is_the_same_for_every_seed_and_draws_train_without_replacement():
    source = datasets.digits()
    one = source.split(100, np.random.default_rng(1))
    two = source.split(100, np.random.default_rng(2))
    assert np.array_equal(one.test, two.test) and one.cache_key == two.cache_key
    draw = one.draw_train(1300, np.random.default_rng(0))
    assert len(np.unique(draw.reshape(1300, -1), axis=0)) == len(
        np.unique(source.arrays.train.reshape(1300, -1), axis=0)
    )
    with pytest.raises(ValueError, match="497 test images"):
        source.split(498, np.random.default_rng(0))
