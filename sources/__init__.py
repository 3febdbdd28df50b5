"""Connectors that read into the dataflow (the Kafka input), beside ``sinks/`` that write out."""
