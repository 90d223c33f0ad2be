"""The run resource: state machine, store, models, reporter, scheduler and the worker processes that execute runs."""
