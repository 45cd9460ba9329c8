"""vsynth: does synthetic or generated data make the real-world vision model better?

Importing vsynth must stay cheap: no backend (ultralytics, yolox, mmseg) and no torch at
module level here, so ``python -m vsynth --help`` answers fast.
"""

__version__ = "0.1.0"
