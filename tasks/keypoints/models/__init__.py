"""Model YAMLs shipped with the keypoints task (found by name through ``model.cfg``)."""
