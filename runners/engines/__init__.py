"""Served engines: server process, streaming client, Prometheus counters, the shared runner."""
