"""Which command-line data keys an arm leaves unread (vsynth/data/arms.py): named, never silently ignored."""

from omegaconf import OmegaConf

from vsynth.data.arms import unused_source_keys


def _cfg(*sources: str):
    return OmegaConf.create({"arm": {"name": "B", "sources": {s: {"factor": 1} for s in sources}},
                             "data": {"real": {}, "synthetic": {}, "keypoints": {"names": None}}})


def test_keys_of_a_source_the_arm_does_not_draw_from_are_named():
    got = unused_source_keys(_cfg("real"), ["data.synthetic.train.coco=/s.json", "data.real.train.coco=/r.json",
                                            "+data.synthetic.train.images=/s", "trainer.length=3"])
    assert got == {"synthetic": ["data.synthetic.train.coco", "data.synthetic.train.images"]}


def test_data_keys_that_are_not_sources_are_not_flagged():
    # data.keypoints (the keypoint schema), data.ratio, data.demo: read by every arm
    overrides = ["data.keypoints.names=[a,b]", "data.ratio=0.5", "data.demo.counts.real.test=8"]
    assert unused_source_keys(_cfg("real"), overrides) == {}
    assert unused_source_keys(_cfg("real", "synthetic"), ["data.synthetic.holdout=0.2"]) == {}
