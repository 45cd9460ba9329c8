"""Experiments of several runs: each launches complete vsynth runs and writes one answer from them.

The kill switch (:mod:`vsynth.experiments.killswitch`) and data value (:mod:`vsynth.experiments.data_value`).
An experiment is a ``mode`` of the entry point (``mode=killswitch``, ``mode=datavalue``), configured by a
preset in ``conf/experiment/``; it launches its runs with :mod:`vsynth.experiments.launch`, passes the
command's own overrides on to them (:mod:`vsynth.experiments.overrides`) and writes its report with
:mod:`vsynth.report`.
"""
