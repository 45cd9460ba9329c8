"""Experiments of several runs: each launches complete vsynth runs and writes one answer from them.

The kill switch (:mod:`vsynth.experiments.killswitch`) is the first. An experiment is a ``mode`` of the
entry point (``mode=killswitch``), configured by a preset in ``conf/experiment/``; it writes its
report with :mod:`vsynth.report`.
"""
