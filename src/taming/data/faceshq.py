"""Face datasets of the original `taming/data/faceshq.py` (CelebA-HQ, FFHQ, FacesHQ): not yet.

They come with a later data issue; constructing any of them now raises `NotImplementedError`
naming what to use meanwhile (`taming.data.folder.ImageFolderDataset` over a folder of face
images gives the same `{"image", "file_path_"}` examples as `FFHQTrain`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CelebAHQTrain",
    "CelebAHQValidation",
    "FFHQTrain",
    "FFHQValidation",
    "FacesHQTrain",
    "FacesHQValidation",
]


class _NotAvailable:
    """Placeholder for an original dataset class that is not implemented yet."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(
            f"taming.data.faceshq.{type(self).__name__} is not available yet (the face "
            "datasets come with a later release); for a folder of face images use "
            "taming.data.folder.ImageFolderDataset"
        )


class CelebAHQTrain(_NotAvailable):
    """Placeholder: not available yet."""


class CelebAHQValidation(_NotAvailable):
    """Placeholder: not available yet."""


class FFHQTrain(_NotAvailable):
    """Placeholder: not available yet."""


class FFHQValidation(_NotAvailable):
    """Placeholder: not available yet."""


class FacesHQTrain(_NotAvailable):
    """Placeholder: not available yet."""


class FacesHQValidation(_NotAvailable):
    """Placeholder: not available yet."""
