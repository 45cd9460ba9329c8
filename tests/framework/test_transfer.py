"""``vsynth.train.transfer``: the name-and-shape matching every task's ``init=`` uses."""

import torch
from torch import nn

from vsynth.train.transfer import load_matched, match_state


def test_matches_by_name_and_shape_and_loads_only_those():
    src, dst = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5)), nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = {k: v for k, v in src.state_dict().items() if k != "0.bias"}
    before = dst.state_dict()["1.weight"].clone()
    m = match_state(dst, state)
    assert m.loaded == 1 and m.total == 4 and list(m.matched) == ["0.weight"]
    assert m.missing == ["0.bias"] and [k for k, _, _ in m.skipped] == ["1.weight", "1.bias"]
    assert m.skipped[0][1:] == ((5, 4), (2, 4)) and m.unfit == ["0.bias", "1.weight", "1.bias"]
    load_matched(dst, m)
    assert torch.equal(dst.state_dict()["0.weight"], src.state_dict()["0.weight"])
    assert torch.equal(dst.state_dict()["1.weight"], before)
