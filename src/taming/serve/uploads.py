"""Uploads into the web app: size limits, image checks, and short plain-text errors.

A request body over `max_bytes` is a 413, as is an image over `max_pixels` (checked from the
header, before any pixel is decoded); a file Pillow cannot identify is a 415 and one it cannot
decode (truncated, corrupt) a 400. Each error is one short line of plain text.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["HTTPError", "Limits", "check_image", "read_form", "upload_bytes"]


class HTTPError(Exception):
    """An error answered with `status` and a one-line plain message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Upload and work limits of the server."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_size: int = 1024  # longest side of a reconstruction
    max_n: int = 16  # images per sample request


async def read_form(request, limits: Limits):
    """The request's form (multipart or urlencoded), its body capped at `limits.max_bytes`."""
    from starlette.requests import Request

    declared = request.headers.get("content-length")
    too_large = HTTPError(
        413, f"upload too large: limit {limits.max_bytes / 2**20:.0f} MB (--max-upload-mb)"
    )
    body = bytearray()
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        # read (and drop) a moderate excess so the client sees the answer, not a reset
        if int(declared) <= 4 * limits.max_bytes:
            async for _ in request.stream():
                pass
        raise too_large
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_bytes:
            raise too_large
    data = bytes(body)

    async def receive() -> dict:
        return {"type": "http.request", "body": data, "more_body": False}

    replay = Request(request.scope, receive)
    try:
        return await replay.form(max_files=4, max_fields=64, max_part_size=limits.max_bytes)
    except Exception as e:  # malformed multipart/urlencoded bodies
        detail = getattr(e, "detail", None) or str(e) or type(e).__name__
        raise HTTPError(400, f"could not read the form: {detail}") from None


async def upload_bytes(form, field: str, required: bool = True) -> bytes | None:
    """The bytes of the uploaded file `field` (None if absent and not required)."""
    item = form.get(field)
    if item is None or (isinstance(item, str) and not item):
        if required:
            raise HTTPError(400, f"missing file field '{field}' (multipart form upload)")
        return None
    if isinstance(item, str):
        raise HTTPError(400, f"field '{field}' must be a file upload, not text")
    data = await item.read()
    if not data:
        raise HTTPError(400, f"field '{field}': the uploaded file is empty")
    return data


def check_image(data: bytes, limits: Limits, field: str = "image") -> Path:
    """Check an uploaded image (type, pixel count, decodability); returns it as a temp file.

    The caller removes the file.
    """
    try:
        with warnings.catch_warnings():  # our own pixel limit applies, checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise HTTPError(
            415, f"'{field}' is not an image Pillow can read (PNG, JPEG, WebP, ...)"
        ) from None
    except Image.DecompressionBombError:
        raise HTTPError(413, f"'{field}': too many pixels") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise HTTPError(
            413,
            f"'{field}' has {w}x{h} = {w * h} pixels, over the limit of {limits.max_pixels} "
            "(--max-pixels)",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise HTTPError(400, f"'{field}' could not be decoded ({e})") from None
    suffix = "." + (im.format or "png").lower()
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        tmp.write(data)
    return Path(tmp.name)
