"""Benchmarks: commands that measure and print, side by side in one run (never timed unit tests).

* ``python -m bench.benchmarks.harness``: ``bench run --methods noisy --workers 1 --save-outputs`` on full-size
  pairs against the organisers' loop (``organisers_loop.py``) on the same pairs, whole processes;
* ``python -m bench.benchmarks.cluster``: one small table through the local executor and through a local
  two-process Dask cluster;
* ``python -m bench.benchmarks.scoring``: the suite's scores against scikit-image's calls on a full frame;
* ``python -m bench speed --full-table`` (``bench.full_table``): every single-frame method and the harness
  on a full-size frame, projected to the 100-pair table.
"""
