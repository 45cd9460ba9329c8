"""conf/ lives at the repo top (the users' layout) but must ship inside the wheel.

It is packaged as ``vsynth.conf`` so an installed, non-editable vsynth composes the same configs;
``vsynth.paths.conf_dir`` finds either location.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["vsynth", "vsynth.*", "tasks", "tasks.*"]) + ["vsynth.conf"],
    package_dir={"vsynth.conf": "conf"},
    package_data={"vsynth.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"], "": ["*.yaml"],
                  "tasks.keypoints": ["weights/*.pt", "weights/*.md"]},
)
