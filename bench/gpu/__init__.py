"""The scripts of the lent GPU machine (run there as ``python bench/gpu/<script>.py``; see docs/gpu-queue.md).

A package so that the table writers in ``bench/`` (run as ``python bench/x.py``, which puts ``bench/``
on ``sys.path``) can read the driver's run specs as ``from gpu.train_fer2013 import run_spec``.
"""
