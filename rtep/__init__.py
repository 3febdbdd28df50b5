"""rtep: real-time event processing platform (shared runtime: settings, metrics, logging, commands)."""

__version__ = "0.4.0"
