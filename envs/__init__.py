"""The env catalog. Importing it registers every env id; no env is built until ``make``."""

from collapsebench.envs.gaussian import GAUSSIAN_DEFAULTS, GAUSSIAN_ND_DEFAULTS, GaussianEnv, GaussianNDEnv
from collapsebench.envs.gmm2d import GMM2D_DEFAULTS, GMM2DEnv
from collapsebench.envs.images import (
    CIFAR_DEFAULTS,
    DIGITS_DEFAULTS,
    FFHQ64_DEFAULTS,
    MNIST_DEFAULTS,
    CIFAREnv,
    DigitsEnv,
    FFHQ64Env,
    MNISTEnv,
    fresh_v1_defaults,
)
from collapsebench.envs.toy2d import (
    CHECKERBOARD_DEFAULTS,
    MOONS_DEFAULTS,
    RINGS8_DEFAULTS,
    CheckerboardEnv,
    MoonsEnv,
    Rings8Env,
)
from collapsebench.registration import register_env, register_family

register_family(
    "Gaussian", "collapsebench.envs.gaussian:GaussianEnv", GAUSSIAN_DEFAULTS, GaussianEnv.__doc__ or ""
)
register_family(
    "GaussianND",
    "collapsebench.envs.gaussian:GaussianNDEnv",
    GAUSSIAN_ND_DEFAULTS,
    GaussianNDEnv.__doc__ or "",
)
register_family("GMM2D", "collapsebench.envs.gmm2d:GMM2DEnv", GMM2D_DEFAULTS, GMM2DEnv.__doc__ or "")
register_family("Moons", "collapsebench.envs.toy2d:MoonsEnv", MOONS_DEFAULTS, MoonsEnv.__doc__ or "")
register_family("Rings8", "collapsebench.envs.toy2d:Rings8Env", RINGS8_DEFAULTS, Rings8Env.__doc__ or "")
register_family(
    "Checkerboard",
    "collapsebench.envs.toy2d:CheckerboardEnv",
    CHECKERBOARD_DEFAULTS,
    CheckerboardEnv.__doc__ or "",
)


def _register_image_worlds() -> None:
    for name, image_env, image_defaults in (
        ("Digits", DigitsEnv, DIGITS_DEFAULTS),
        ("MNIST", MNISTEnv, MNIST_DEFAULTS),
        ("CIFAR", CIFAREnv, CIFAR_DEFAULTS),
        ("FFHQ64", FFHQ64Env, FFHQ64_DEFAULTS),
    ):
        entry_point, doc = f"collapsebench.envs.images:{image_env.__name__}", image_env.__doc__ or ""
        register_family(name, entry_point, image_defaults, doc)
        register_env(f"{name}-fresh-v1", entry_point, fresh_v1_defaults(image_defaults), doc)


_register_image_worlds()
