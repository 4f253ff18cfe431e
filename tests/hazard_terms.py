"""The simulator's voluntary-exit log hazard, rebuilt from its stated truth (shared by the simulator tests)."""

import numpy as np

import alignment_research as ar


def exit_linear_predictor(truth, ti, feedback):
    """The truth's linear predictor on the simulator's true intervals ``ti`` (with a ``date`` column).

    The manager-change term enters with job history; with the practices on, the
    check-ins per month and recognitions the intervals carry are first checked
    against the feedback table, measured in their look-backs before each
    interval's start exactly as the scorecard measures them, and then enter too.
    """
    lp = (truth.hr_alignment * ti["alignment_cascade"] + truth.hr_engagement * (ti["engagement"] - 3)
          + truth.hr_manager_program * ti["manager_program"]
          + truth.hr_manager_rating * (ti["manager_rating"] - 3) + ti["job_level"].map(truth.hr_job_level))
    if truth.history:
        lp = lp + truth.manager_change_exit_hr * ti["recent_manager_change"]
    if truth.practices:
        for kind, column, months, per in (("check_in", "checkins_per_month", truth.checkin_window_months, False),
                                          ("recognition", "recognitions", truth.recognition_window_months, True)):
            rate = ar.trailing_event_rate(feedback[feedback["kind"] == kind], ti, months=months)
            count = rate * round(months * 365.25 / 12) / (365.25 / 12)  # the events themselves
            np.testing.assert_allclose(ti[column], count if per else rate, atol=1e-9)
        assert ti["checkins_per_month"].mean() > 0.3 and ti["recognitions"].mean() > 0.3
        lp = lp + truth.hr_checkin_rate * ti["checkins_per_month"] + truth.hr_recognitions * ti["recognitions"]
    return lp
