"""Plots draw what their tidy table says (artists, not pixels)."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import to_hex

import alignment_research as ar

TIDY = pd.DataFrame({"term": ["a", "b"], "estimate": [np.log(0.5), np.log(2.0)],
                     "conf_low": [np.log(0.4), np.log(1.5)], "conf_high": [np.log(0.6), np.log(2.5)],
                     "exp_estimate": [0.5, 2.0], "exp_conf_low": [0.4, 1.5], "exp_conf_high": [0.6, 2.5]})


def test_forest_plot_draws_each_ratio_with_its_interval():
    ax = ar.plot_forest(TIDY, ratio=True)
    points = ax.lines[0].get_xydata()
    np.testing.assert_allclose(points, [[0.5, 1], [2.0, 0]])
    assert ax.get_xscale() == "log"
    labels = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert labels == {"a": 1, "b": 0}  # first term on top
    segments = ax.collections[0].get_segments()
    np.testing.assert_allclose([s[:, 0] for s in segments], [[0.4, 0.6], [1.5, 2.5]])


def test_forest_plot_on_the_linear_scale_has_a_zero_line():
    ax = ar.plot_forest(TIDY)
    np.testing.assert_allclose(ax.lines[0].get_xydata()[:, 0], TIDY["estimate"])
    assert ax.lines[-1].get_xdata()[0] == 0.0


def test_forest_plot_uses_the_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert ar.plot_forest(TIDY, ax=axes[1]) is axes[1]
    assert not axes[0].lines


def test_model_result_plot_and_repr_have_no_timestamp():
    res = ar.ModelResult("demo", TIDY, pd.DataFrame({"n": [10], "cov_type": ["model-based"]}))
    assert res.plot().get_xscale() == "log"
    text = repr(res) + res._repr_html_()
    assert "2026" not in text and "time" not in text.lower()
    assert res.tidy() is not res.table and res.tidy().equals(res.table)


def test_set_theme_uses_the_colour_blind_palette():
    ar.set_theme()
    assert to_hex(plt.rcParams["axes.prop_cycle"].by_key()["color"][0]) == sns.color_palette("colorblind").as_hex()[0]


def test_ratio_axis_is_labelled_with_plain_numbers():
    ax = ar.plot_forest(TIDY, ratio=True)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0.5", "0.7", "1", "1.5", "2"]
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))


# --------------------------------------------------------------------------- plots own their axes


def test_axes_for_returns_the_given_axes_or_a_new_figure():
    fig, given = plt.subplots()
    assert ar.plots.axes_for(given) is given
    first, second = ar.plots.axes_for(), ar.plots.axes_for(figsize=(3, 2))
    assert first.figure is not second.figure and fig not in (first.figure, second.figure)
    np.testing.assert_allclose(second.figure.get_size_inches(), [3, 2])


def test_a_plot_without_ax_never_draws_on_the_current_figure():
    fig, current = plt.subplots()
    ax = ar.plot_forest(TIDY)
    assert ax is not current and ax.figure is not fig
    assert not current.lines and not current.collections


def test_a_model_plot_and_a_retention_plot_get_separate_axes(tiny_clean):
    person = tiny_clean.analysis.person
    cox = ar.fit_cox(person, "alignment_cascade_entry", duration="exit", entry="entry", event="event")
    ax = cox.plot()
    drawn = [line.get_xydata().copy() for line in ax.lines]
    levelled = ar.add_levels(person, "alignment_cascade_entry")
    km = ar.fit_km(levelled, group="alignment_level")
    curves = ar.plot_retention(km, min_group_size=1)
    assert curves is not ax and curves.figure is not ax.figure
    assert len(ax.lines) == len(drawn)  # the forest plot is untouched
    for before, line in zip(drawn, ax.lines):
        np.testing.assert_array_equal(before, line.get_xydata())
    # one step curve per alignment level, on its own Axes (ties at full alignment can merge two levels)
    assert len(curves.lines) >= levelled["alignment_level"].nunique() >= 2


def test_no_module_reaches_for_the_current_axes():
    package = Path(ar.__file__).parent
    offenders = [f"{path.name}:{n}" for path in sorted(package.rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "plt.gca()" in line or "plt.gcf()" in line]
    assert not offenders, f"plot functions take ax= or make their own figure (plots.axes_for): {offenders}"
