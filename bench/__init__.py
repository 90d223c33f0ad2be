"""Benchmarks of the CDC engine against PostgreSQL's native logical replication, measured in the same run."""
