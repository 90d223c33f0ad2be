"""``make demo``: until the end-to-end example DAG lands, start the CDC core service on an embedded state store."""

from __future__ import annotations

import sys

from airflow_connectors.cdc.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", "--embedded-state", ".cdc-state", *sys.argv[1:]]))
