"""Permuters: valid permutations, exact inverses, and the original orderings (hand-checked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taming.transformer.permuter import (
    AlternateParsing,
    Identity,
    Random,
    SpiralIn,
    SpiralOut,
    Subsample,
    ZCurve,
    mortonify,
)

ALL = [Subsample, ZCurve, SpiralOut, SpiralIn, Random, AlternateParsing]

# Orderings on a 4x4 grid (sequence position -> raster index), derived by hand.
KNOWN_4x4 = {
    # level-1 parity (row, col) is the major key, then level-2 parity
    Subsample: [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15],
    # Morton order: 2x2 blocks, each visited (0,0) (0,1) (1,0) (1,1)
    ZCurve: [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15],
    # from (2, 1) up, right, down, left, ..., ending at the bottom-right corner
    SpiralOut: [9, 5, 6, 10, 14, 13, 12, 8, 4, 0, 1, 2, 3, 7, 11, 15],
    SpiralIn: [15, 11, 7, 3, 2, 1, 0, 4, 8, 12, 13, 14, 10, 6, 5, 9],
    AlternateParsing: [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11, 15, 14, 13, 12],
}


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("size", [2, 4, 8, 16])
def test_is_permutation_and_reverse_inverts(cls, size):
    perm = cls(size, size)
    fwd, bwd = perm.forward_shuffle_idx, perm.backward_shuffle_idx
    assert fwd.dtype == bwd.dtype == torch.int64
    assert sorted(fwd.tolist()) == list(range(size * size))
    assert torch.equal(fwd[bwd], torch.arange(size * size))
    x = torch.randint(0, 1000, (3, size * size))
    y = perm(x)
    if size >= 4:
        assert not torch.equal(y, x)  # a real reordering
    assert torch.equal(perm(y, reverse=True), x)
    assert torch.equal(perm(perm(x, reverse=True)), x)
    # trailing feature axes are carried along
    feats = torch.randn(2, size * size, 5)
    assert torch.equal(perm(perm(feats), reverse=True), feats)


@pytest.mark.parametrize("cls", list(KNOWN_4x4))
def test_known_orderings_4x4(cls):
    perm = cls(4, 4)
    assert perm.forward_shuffle_idx.tolist() == KNOWN_4x4[cls]
    x = torch.arange(16)[None] * 10
    assert perm(x)[0].tolist() == [10 * k for k in KNOWN_4x4[cls]]


def test_spiral_moves_between_neighbours():
    for size in (2, 6, 16):
        order = SpiralOut(size, size).forward_shuffle_idx.tolist()
        rc = [divmod(k, size) for k in order]
        steps = {abs(r0 - r1) + abs(c0 - c1) for (r0, c0), (r1, c1) in zip(rc, rc[1:])}
        assert steps == {1}
        assert order[0] == (size // 2) * size + size // 2 - 1
        assert order[-1] == size * size - 1


def test_zcurve_backward_holds_morton_codes():
    perm = ZCurve(8, 8)
    codes = [mortonify(i, j) for i in range(8) for j in range(8)]
    assert perm.backward_shuffle_idx.tolist() == codes
    assert mortonify(0b10, 0b01) == 0b1001
    assert mortonify(3, 0) == 0b1010


def test_subsample_first_quarter_is_even_sublattice():
    perm = Subsample(8, 8)
    first = perm.forward_shuffle_idx[:16].tolist()
    assert sorted(first) == sorted(r * 8 + c for r in range(0, 8, 2) for c in range(0, 8, 2))


def test_random_matches_numpy_seed_1():
    perm = Random(4, 6)
    assert perm.forward_shuffle_idx.tolist() == np.random.RandomState(1).permutation(24).tolist()
    x = torch.arange(24)[None]
    assert torch.equal(perm(perm(x), reverse=True), x)


def test_alternate_parsing_non_square():
    perm = AlternateParsing(3, 4)
    assert perm.forward_shuffle_idx.tolist() == [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11]


def test_identity_has_no_buffers():
    perm = Identity()
    x = torch.randint(0, 9, (2, 7))
    assert perm(x) is x and perm(x, reverse=True) is x
    assert perm.state_dict() == {}


def test_invalid_grids_raise():
    with pytest.raises(ValueError):
        ZCurve(6, 6)
    with pytest.raises(ValueError):
        Subsample(4, 8)
    with pytest.raises(ValueError):
        SpiralOut(4, 6)
    with pytest.raises(ValueError):
        SpiralIn(4, 6)


@pytest.mark.parametrize("cls", ALL)
def test_state_dict_keys_and_strict_roundtrip(cls):
    perm = cls(4, 4)
    sd = perm.state_dict()
    assert set(sd) == {"forward_shuffle_idx", "backward_shuffle_idx"}
    other = cls(4, 4)
    other.load_state_dict({k: v.clone() for k, v in sd.items()}, strict=True)
    assert torch.equal(other.forward_shuffle_idx, perm.forward_shuffle_idx)
