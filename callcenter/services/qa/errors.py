"""The QA layer's errors: one base, and the three ways a request can be refused."""

from __future__ import annotations


class QaError(Exception):
    """Base of the QA service's refusals; the message is for a person."""


class QaNotFound(QaError):
    """No such recording, scorecard or comment, or not one this viewer may see."""


class QaConflict(QaError):
    """Not possible now: a used scorecard edited, a held recording deleted, a retired card."""


class QaInvalid(QaError):
    """A malformed scorecard, answer or comment."""
