"""The raw core: DNG input/output, packing and levels, demosaicking, the noise model and its estimator,
the competition metrics, errors, hashing and process housekeeping. Imports nothing of the rest of
``bench`` and nothing of ``methods``."""
