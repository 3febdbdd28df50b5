"""The floor every part of rtep stands on: settings, metrics, logs, process services."""
