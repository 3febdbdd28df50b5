"""Where 0.2.0 recovery snapshots find ``Event`` (held failed logins of the stuffing step): a
pickle names a class by its module, and the records moved to ``operators.records`` in 0.3.0.
Kept so that a 0.2.0 recovery directory resumes (``tests/upgrade``)."""

from operators.records import Event

__all__ = ["Event"]
