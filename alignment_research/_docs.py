"""Parameter descriptions written once and shared by docstrings (``.format``)."""

DOCS = dict(
    data="data : pandas.DataFrame\n        One of the analysis tables (``person``, ``intervals``, ``survey_panel``, ``cycles``).",
    formula=(
        "formula : str\n        Right-hand side in R/patsy syntax, e.g. ``\"alignment_cascade + C(job_level)\"``.\n"
        "        Categorical terms use treatment coding with the first sorted level as reference."
    ),
    alpha="alpha : float, default 0.05\n        Confidence intervals are at level ``1 - alpha``.",
    cluster=(
        "cluster : str, optional\n        Column whose values define clusters (usually ``\"manager_id\"``);\n"
        "        standard errors are then cluster-robust."
    ),
    event="event : str, default \"event\"\n        Column holding 1 for a voluntary exit and 0 otherwise.",
)
