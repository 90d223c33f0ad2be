"""The CDC core's HTTP service (FastAPI): connectors, validation, commands and replication runs."""
