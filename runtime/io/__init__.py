"""Data movement: sources, sinks, HTTP downloads and JSON APIs, declared columns, owned outputs."""
