"""The connector resource: its models (the single source of truth for the schema), merge patch, store, secrets."""
