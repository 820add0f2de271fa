"""The image-level samplers against golden outputs recorded before the issue-8 refactor.

`tests/make_goldens.py` wrote `fixtures/golden/sampling.npz` (seeded tokens and decoded images
of plain, class, CFG, sliding-window and completion sampling on fixed-seed tiny models) with the
code as it was before image-level sampling moved out of `sampling/pipeline.py`. The tokens must
be identical; the images agree to a float tolerance (the decoder's convolutions may sum in
another order on another CPU; the fp32 images of this tiny decoder differ by ~1e-6 at most).
"""

from __future__ import annotations

import numpy as np
import pytest

from make_goldens import GOLDEN, compute_goldens


@pytest.fixture(scope="module")
def current() -> dict[str, np.ndarray]:
    return compute_goldens()


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as f:
        return {k: f[k] for k in f.files}


def test_the_golden_file_holds_every_case(golden):
    cases = {k.split("/")[0] for k in golden}
    assert cases == {
        "plain", "class", "cfg", "sliding", "sliding_class_cfg", "sliding_seg", "completion",
        "completion_wide",
    }  # fmt: skip
    for case in cases:
        tokens = golden[f"{case}/tokens"]
        assert len(np.unique(tokens)) > 4, case  # real draws, not a constant grid


@pytest.mark.parametrize(
    "case",
    [
        "plain", "class", "cfg", "sliding", "sliding_class_cfg", "sliding_seg", "completion",
        "completion_wide",
    ],
)  # fmt: skip
def test_sampling_matches_the_goldens(current, golden, case):
    tokens, images = golden[f"{case}/tokens"], golden[f"{case}/images"]
    assert current[f"{case}/tokens"].shape == tokens.shape
    np.testing.assert_array_equal(current[f"{case}/tokens"], tokens)
    np.testing.assert_allclose(current[f"{case}/images"], images, rtol=0, atol=1e-4)
