"""Benchmarks run by ``wastewatch bench``: the job end to end against its bare model, memory
against scene size; results as JSON with the machine's description."""
