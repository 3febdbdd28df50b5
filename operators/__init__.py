"""Pure step logic of the rtep dataflow: no I/O, no imports of sinks or dataflows."""
