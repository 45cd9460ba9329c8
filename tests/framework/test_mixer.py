from collections import Counter

import pytest

from vsynth.data.mixer import MixBatchSampler, Source, real_count, split_remainder
from vsynth.errors import ConfigError

SOURCES = [Source("real", 37, 1.0), Source("generated", 53, 1.0)]


@pytest.mark.parametrize("ratio,n_real", [(1.0, 8), (0.75, 6), (0.5, 4), (0.25, 2), (0.12, 1), (0.0, 0)])
def test_ratio_gives_exact_per_batch_composition(ratio, n_real):
    s = MixBatchSampler(SOURCES, 8, ratio=ratio, seed=3)
    assert s.composition() == {"real": n_real, "generated": 8 - n_real}
    batches = list(s)
    assert len(batches) == len(s) > 0
    for b in batches:
        c = Counter(s.source_of(i) for i, _ in b)
        assert c["real"] == n_real and c["generated"] == 8 - n_real
    label = s.describe()
    assert f"{n_real} real + {8 - n_real} generated = 8 total" in label


def test_ratio_streams_cover_small_source_evenly():
    s = MixBatchSampler([Source("real", 5), Source("generated", 100)], 8, ratio=0.5, seed=0, batches_per_epoch=10)
    reals = Counter(i for b in s for i, _ in b if i < 5)
    assert sorted(reals.values()) == [8, 8, 8, 8, 8]  # 40 real draws over 5 images, each cycled fully


def test_round_half_up_and_remainder_rule():
    assert real_count(0.12, 8) == 1 and real_count(0.0625, 8) == 1 and real_count(0.06, 8) == 0
    assert split_remainder(5, {"a": 1, "b": 1}) == {"a": 3, "b": 2}  # tie -> source order
    assert split_remainder(7, {"a": 1, "b": 0, "c": 2}) == {"a": 2, "b": 0, "c": 5}


def test_oversample_epoch_counts_and_determinism():
    src = [Source("real", 10, 8), Source("synthetic", 30, 1)]
    s = MixBatchSampler(src, 10, seed=1)
    flat = [i for b in s for i, _ in b]
    assert len(flat) == 110 and len(s) == 11
    c = Counter(flat)
    assert all(c[i] == 8 for i in range(10)) and all(c[i] == 1 for i in range(10, 40))
    again = MixBatchSampler(src, 10, seed=1)
    assert [b for b in again] == [b for b in MixBatchSampler(src, 10, seed=1)]
    s.set_epoch(1)
    assert [i for b in s for i, _ in b] != flat  # new epoch, new order
    other_seed = MixBatchSampler(src, 10, seed=2)
    assert [i for b in other_seed for i, _ in b] != flat


def test_fractional_factor_adds_partial_copy():
    s = MixBatchSampler([Source("real", 10, 1.5)], 5, seed=0)
    c = Counter(i for b in s for i, _ in b)
    assert sum(c.values()) == 15 and set(c.values()) == {1, 2}


def test_resume_position_skips_exactly():
    s = MixBatchSampler(SOURCES, 8, ratio=0.5, seed=5)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=4)
    assert list(s) == full[4:]
    assert list(s) == full  # start position applies once


def test_ddp_shards_are_disjoint_and_exact():
    shards = [MixBatchSampler(SOURCES, 4, ratio=0.25, seed=9, rank=r, world_size=2) for r in range(2)]
    single = list(MixBatchSampler(SOURCES, 4, ratio=0.25, seed=9))
    b0, b1 = list(shards[0]), list(shards[1])
    assert len(b0) == len(b1) == len(single) // 2
    assert b0 == single[0::2][: len(b0)] and b1 == single[1::2][: len(b1)]
    for b in b0 + b1:
        assert Counter(shards[0].source_of(i) for i, _ in b) == {"real": 1, "generated": 3}


def test_sample_seeds_are_stable_and_distinct():
    b = list(MixBatchSampler(SOURCES, 8, ratio=0.5, seed=0))
    seeds = [sd for batch in b for _, sd in batch]
    assert len(set(seeds)) > len(seeds) * 0.99


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(ratio=1.5), "data.ratio must be in"),
        (dict(ratio=-0.1), "data.ratio must be in"),
        (dict(sources=[Source("real", 5, -1)]), "factor must be >= 0"),
        (dict(sources=[Source("generated", 5)], ratio=0.5), "needs a source named 'real'"),
        (dict(sources=[Source("real", 5)], ratio=0.5), "no other source"),
        (dict(sources=[Source("real", 0, 1)]), "'real' is empty"),
        (dict(sources=[Source("real", 5, 0)]), "draws from no source"),
    ],
)
def test_bad_mix_config(kwargs, match):
    sources = kwargs.pop("sources", SOURCES)
    with pytest.raises(ConfigError, match=match):
        MixBatchSampler(sources, 8, **kwargs)


def test_ratio_extremes_need_only_one_source():
    only_real = MixBatchSampler([Source("real", 9), Source("generated", 0)], 4, ratio=1.0)
    assert all(len(b) == 4 for b in only_real)
    only_gen = MixBatchSampler([Source("real", 0), Source("generated", 9)], 4, ratio=0.0)
    assert all(only_gen.source_of(i) == "generated" for b in only_gen for i, _ in b)
