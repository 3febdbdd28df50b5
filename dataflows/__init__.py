"""Bytewax dataflow wiring: connects operators/ (pure logic) to sinks/ (I/O)."""
