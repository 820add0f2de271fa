"""Batch collation for the data loaders (original `taming/data/utils.py: custom_collate`).

`custom_collate` is PyTorch's `default_collate` with one change: a field holding lists of
`Annotation`s (scene layouts) is returned as is, a list with one list of annotations per
example (also when the lists are empty, where the original failed); single `Annotation`s are
likewise kept as a list. Everything else follows
`default_collate`: arrays and tensors are stacked, numbers become tensors (Python floats
float64), strings stay lists, mappings and sequences are collated field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import default_collate

from taming.data.helper_types import Annotation

__all__ = ["custom_collate"]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _is_annotation_lists(batch: Sequence[Any]) -> bool:
    return all(isinstance(seq, list | tuple) and not _is_namedtuple(seq) for seq in batch) and all(
        isinstance(a, Annotation) for seq in batch for a in seq
    )


def custom_collate(batch: Sequence[Any]) -> Any:
    """Collate a list of examples into a batch (see the module docstring).

    Args:
        batch: examples as returned by a dataset (usually dicts).

    Returns:
        The batch: a dict of stacked tensors / lists for dict examples.
    """
    elem = batch[0]
    if isinstance(elem, Mapping):
        return {key: custom_collate([example[key] for example in batch]) for key in elem}
    if isinstance(elem, Annotation) or _is_annotation_lists(batch):
        return list(batch)
    if _is_namedtuple(elem):
        return type(elem)(*(custom_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, list | tuple) and not _is_namedtuple(elem):
        size = len(elem)
        if any(len(example) != size for example in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [custom_collate(list(field)) for field in zip(*batch)]
    return default_collate(batch)
