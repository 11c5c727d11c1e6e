"""Collapse metrics as plain functions of arrays; ``collapsebench.scoring`` applies them per generation."""

from collapsebench.metrics.frechet import frechet_distance, frechet_distance_from_samples, gaussian_statistics
from collapsebench.metrics.modes import memorization_fraction, mode_coverage
from collapsebench.metrics.moments import std_ratio
from collapsebench.metrics.prdc import knn_radii, kth_neighbour_radii, precision_recall_density_coverage
from collapsebench.metrics.tails import TailReference, tail_mass
from collapsebench.metrics.wasserstein import wasserstein2

__all__ = [
    "TailReference",
    "frechet_distance",
    "frechet_distance_from_samples",
    "gaussian_statistics",
    "knn_radii",
    "kth_neighbour_radii",
    "memorization_fraction",
    "mode_coverage",
    "precision_recall_density_coverage",
    "std_ratio",
    "tail_mass",
    "wasserstein2",
]
