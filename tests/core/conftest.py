"""Hypothesis profiles for the core suite.

``ci`` (the default) keeps the whole core suite under a minute on two cores; ``thorough`` runs ten
times as many examples and longer state-machine programs.
Choose with ``HYPOTHESIS_PROFILE=thorough``.
Tests that are expensive per example ask for a fraction of the profile's budget with
`tests.core.strategies.budget`, so both profiles scale them.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("ci", max_examples=100, stateful_step_count=50, **_COMMON)
settings.register_profile("thorough", max_examples=1000, stateful_step_count=120, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
