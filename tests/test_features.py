"""Feature extractors: the bundled Digits network, the weights manifest, the real-feature cache."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from collapsebench import datasets, features
from collapsebench.features import WEIGHTS, WeightsError


def test_bundled_digits_network_matches_its_manifest_hash_and_documented_accuracy():
    import torch

    path, digest = WEIGHTS["digits-cnn"].verified_path()
    assert digest == WEIGHTS["digits-cnn"].sha256
    network = features.feature_cnn(channels=1)
    network.load_state_dict(torch.load(path, weights_only=True))
    test = datasets.load_digits_images()
    with torch.no_grad():
        logits = network(torch.from_numpy(test.test).float() / 127.5 - 1)
    accuracy = (logits.argmax(1).numpy() == test.test_labels).mean()
    assert accuracy >= 0.98  # baselines/train_feature_net.py printed 0.9839


def test_digits_features_are_float64_batch_independent_and_recorded_with_versions():
    extractor = features.make_features("digits-cnn")
    images = datasets.load_digits_images().test[:300]
    whole = extractor(images)
    assert whole.shape == (300, 128) and whole.dtype == np.float64
    extractor.batch_size = 7
    np.testing.assert_allclose(extractor(images), whole, rtol=1e-5, atol=1e-6)
    assert extractor.version.startswith("digits-cnn:sha256=878a150c669d77c9:batch=7:torch=")


def test_a_wrong_weights_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "digits_cnn.pt"
    fake.write_bytes(b"not the network")
    monkeypatch.setenv(WEIGHTS["digits-cnn"].env_var, str(fake))
    with pytest.raises(WeightsError, match=r"has sha256 .* starts with 878a150c"):
        features.make_features("digits-cnn")(np.zeros((1, 1, 8, 8), np.uint8))


def test_missing_weights_say_where_to_get_them_and_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(features.WEIGHTS_ENV_VAR, str(tmp_path))
    with pytest.raises(
        WeightsError, match=r"weights-inception-2015-12-05-6726825d.pth from https://github.com"
    ):
        WEIGHTS["inception-v3"].path()
    with pytest.raises(WeightsError, match=r"train_feature_net.py mnist .*COLLAPSEBENCH_WEIGHTS_MNIST_CNN"):
        WEIGHTS["mnist-cnn"].path()


def test_a_hash_prefix_entry_accepts_the_matching_file_only(tmp_path, monkeypatch):
    payload = tmp_path / "w.pt"
    payload.write_bytes(b"abc")  # sha256 ba7816bf...
    entry = dataclasses.replace(WEIGHTS["inception-v3"], name="test-entry", sha256="ba7816bf")
    monkeypatch.setenv(entry.env_var, str(payload))
    assert entry.verified_path()[1].startswith("ba7816bf")
    with pytest.raises(WeightsError):
        dataclasses.replace(entry, sha256="ba7816bff").verified_path()


@pytest.mark.skipif(
    importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity is installed"
)
def test_inception_without_the_fid_extra_says_how_to_install_it():
    with pytest.raises(ImportError, match=r"\[fid\]"):
        features.make_features("inception-v3")(np.zeros((1, 3, 32, 32), np.uint8))


class CountingFeatures(features.DigitsCNNFeatures):
    calls = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        CountingFeatures.calls += 1
        return super().__call__(images)


def test_real_features_are_computed_once_per_set_and_extractor_version(tmp_path, monkeypatch):
    monkeypatch.setenv(features.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(features, "_MEMORY", {})
    images = datasets.load_digits_images().test[:50]
    extractor = CountingFeatures()
    first = features.cached_features(extractor, images, "digits:50")
    again = features.cached_features(extractor, images, "digits:50")
    assert CountingFeatures.calls == 1 and again is first
    monkeypatch.setattr(features, "_MEMORY", {})  # a new process: read back from disk
    from_disk = features.cached_features(extractor, images, "digits:50")
    assert CountingFeatures.calls == 1 and np.array_equal(from_disk, first)
    assert len(list(tmp_path.glob("digits-cnn-*.npy"))) == 1
    extractor.batch_size = 10  # another version: computed afresh
    features.cached_features(extractor, images, "digits:50")
    assert CountingFeatures.calls == 2
