"""The run folder: one self-contained directory per run or sweep job."""
