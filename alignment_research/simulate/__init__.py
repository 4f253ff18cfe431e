"""Simulate a synthetic study with known true effects (an organisation, its goals, surveys and exits)."""

from .study import SimulatedStudy, simulate_study, write_simulated_study
from .truth import SCALE_ITEMS, Truth, default_truth, load_truth

__all__ = [
    "Truth",
    "SimulatedStudy",
    "default_truth",
    "load_truth",
    "simulate_study",
    "write_simulated_study",
    "SCALE_ITEMS",
]
