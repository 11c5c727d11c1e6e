"""Feature extractors: the bundled Digits network, the weights manifest, the real-feature cache."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

import collapsebench as cb
from collapsebench import datasets, features
from collapsebench.features import WEIGHTS, WeightsError

from conftest import TINY_MLP


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


def test_a_torn_or_foreign_feature_cache_file_is_recomputed_and_replaced(tmp_path, monkeypatch):
    """A process killed mid-write, or a file of another length under the name: computed afresh."""
    monkeypatch.setenv(features.CACHE_ENV_VAR, str(tmp_path))
    images = datasets.load_digits_images().test[:50]
    extractor = CountingFeatures()
    monkeypatch.setattr(features, "_MEMORY", {})
    expected = features.cached_features(extractor, images, "digits:50")
    (path,) = tmp_path.glob("digits-cnn-*.npy")
    calls = CountingFeatures.calls
    for broken in (path.read_bytes()[:200], None):  # torn: cut short; foreign: 10 rows, not 50
        if broken is None:
            np.save(path, expected[:10])
        else:
            path.write_bytes(broken)
        monkeypatch.setattr(features, "_MEMORY", {})  # a new process
        again = features.cached_features(extractor, images, "digits:50")
        calls += 1
        assert CountingFeatures.calls == calls and np.array_equal(again, expected)
        assert np.array_equal(np.load(path), expected)  # the file is whole again
    assert list(tmp_path.glob("*.tmp.npy")) == []


# ------------------------------------------------------------------------------------------ DINOv2
TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 14}
TINY_VIT |= {"image_size": 518, "mlp_ratio": 4}  # the hub's position-embedding grid, as for ViT-L
# The hub's checkpoints were written by transformers 4 and keep its attention names.
HUB_NAMES = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
}


class TinyDINOv2(features.DINOv2Features):
    name = weights = "dinov2-tiny-test"
    architecture = TINY_VIT
    resolution = 56  # 4×4 patches: quick on CPU; the position grid is still interpolated


def write_hub_checkpoint(path, architecture, drop_layer: int | None = None):
    """A random DINOv2 saved as the hub's model.safetensors is laid out; the in-memory network back."""
    import torch
    from safetensors.torch import save_file
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    network = Dinov2Model(Dinov2Config(**architecture)).eval()
    state = {}
    for key, tensor in network.state_dict().items():
        for current, hub in HUB_NAMES.items():
            key = key.replace(current, hub)
        if drop_layer is None or f"layer.{drop_layer}." not in key:
            state[key] = tensor.contiguous()
    save_file(state, str(path), metadata={"format": "pt"})
    return network


@pytest.fixture
def tiny_dinov2(tmp_path, monkeypatch):
    """The tiny extractor with its manifest entry pointing at a fresh checkpoint; returns the file's
    in-memory network."""
    pytest.importorskip("transformers", reason="the [dinov2] extra is not installed")
    path = tmp_path / "dinov2-tiny.safetensors"
    network = write_hub_checkpoint(path, TINY_VIT)
    entry = features.WeightsFile(TinyDINOv2.weights, path.name, None, "the test")
    monkeypatch.setitem(WEIGHTS, entry.name, entry)
    monkeypatch.setenv(entry.env_var, str(path))
    return network


def test_dinov2_features_are_the_class_token_of_the_documented_preprocessing(tiny_dinov2):
    import torch

    # A constant image stays constant through any resize, so its network input is known in closed
    # form: (value / 255 − ImageNet mean) / ImageNet std, per channel; grey counts as RGB.
    colour = np.array([200, 30, 90], np.uint8)
    rgb = np.broadcast_to(colour.reshape(1, 3, 1, 1), (2, 3, 32, 32)).copy()
    grey = np.full((1, 1, 8, 8), 77, np.uint8)
    extractor = TinyDINOv2(device="cpu")
    got = extractor(rgb), extractor(grey)

    def expected(values: np.ndarray) -> np.ndarray:
        normalized = (values / 255.0 - features.IMAGENET_MEAN) / features.IMAGENET_STD
        pixels = torch.tensor(normalized, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 56, 56)
        with torch.no_grad():
            return tiny_dinov2(pixel_values=pixels).pooler_output.double().numpy()

    assert got[0].shape == (2, 32) and got[0].dtype == np.float64
    np.testing.assert_allclose(got[0], np.repeat(expected(colour), 2, axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], expected(np.full(3, 77)), rtol=1e-5, atol=1e-5)
    assert abs(got[0][0] - got[1][0]).max() > 0.1  # the colours do reach the features


def test_dinov2_features_do_not_depend_on_the_batch_and_record_their_versions(tiny_dinov2):
    images = datasets.load_digits_images().test[:30]
    extractor = TinyDINOv2(device="cpu")
    whole = extractor(images)
    extractor.batch_size = 7
    np.testing.assert_allclose(extractor(images), whole, rtol=1e-4, atol=1e-5)
    assert extractor.version.startswith("dinov2-tiny-test:sha256=")
    assert (
        "transformers=" in extractor.version
        and "pillow=" in extractor.version
        and "=?" not in extractor.version
    )


@pytest.mark.parametrize(
    ("architecture", "drop_layer", "reason"),
    [(TINY_VIT | {"hidden_size": 48}, None, "mismatched|size"), (TINY_VIT, 1, "missing")],
    ids=["other-architecture", "truncated"],
)
def test_a_checkpoint_of_another_network_is_refused_with_what_differs(
    tiny_dinov2, tmp_path, monkeypatch, architecture, drop_layer, reason
):
    other = tmp_path / "other.safetensors"
    write_hub_checkpoint(other, architecture, drop_layer=drop_layer)
    monkeypatch.setenv(WEIGHTS[TinyDINOv2.weights].env_var, str(other))
    with pytest.raises(
        WeightsError, match=rf"other.safetensors is not a dinov2-tiny-test checkpoint: .*({reason})"
    ):
        TinyDINOv2(device="cpu")(np.zeros((1, 3, 8, 8), np.uint8))


def test_dinov2_without_the_extra_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # an import of it now fails
    with pytest.raises(ImportError, match=r"\[dinov2\]"):
        features.make_features("dinov2-vitl14")(np.zeros((1, 3, 32, 32), np.uint8))


def test_dinov2_weights_are_looked_for_locally_and_say_where_they_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(features.WEIGHTS_ENV_VAR, str(tmp_path))
    assert {"dinov2-vits14", "dinov2-vitb14", "dinov2-vitl14"} <= set(features.FEATURES)
    with pytest.raises(
        WeightsError, match=r"dinov2-large.safetensors from https://huggingface.co/facebook/dinov2-large/"
    ):
        WEIGHTS["dinov2-vitl14"].path()


def test_an_image_env_scores_generations_on_dinov2_features(tiny_dinov2):
    env = cb.make(
        "Digits-mix-v0",
        generations=1,
        n_test=40,
        n_eval=40,
        model_kwargs=TINY_MLP,
        features=TinyDINOv2("cpu"),
    )
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones(env.action_space.shape))
    assert np.isfinite(info["metrics"]["fd"]) and info["metrics"]["fd"] > 0
    assert env.unwrapped.feature_version.startswith("dinov2-tiny-test:sha256=")
