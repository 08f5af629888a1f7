"""A tiny hand-set world for the widget tests: identity-like models on 8 x 8 images, milliseconds per pass.

The generator paints channel c with tanh(w_c / 4); the classifier's features are r = relu(4 tanh(w / 4)) and its
head is the identity, so the class is argmax r (the world of tests/counterfactual/conftest.py, unconditional).
Its fixtures ``fake_world``, ``linked`` (a ridge link fitted on 24 pairs) and ``identity_linked`` come from
:mod:`fake_linked`, shared with the controller tests.
"""

from __future__ import annotations

from fake_linked import fake_world, identity_linked, linked  # noqa: F401  (the fake linked world's fixtures)
