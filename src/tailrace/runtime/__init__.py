"""Execution (layer 4): running attempts of activities and preconditions, firing actions,
the one-shot local runner, and (service.py, scheduler.py, worker.py) the pipeline service."""
