"""The web app: a plain HTML page and the JSON/PNG endpoints behind it (Starlette).

    GET  /                 the page (upload, reconstruct, token grid, sample, complete)
    GET  /healthz          {"status": "ok", ...}
    GET  /api/models       the served first stages and transformers
    GET  /api/jobs         running jobs with their progress
    POST /api/reconstruct  multipart `image` [, `size`, `model`]          -> image/png
    POST /api/tokens       multipart `image` [, `size`, `model`]          -> JSON code grid
    POST /api/sample       `n`, `top_k`, `top_p`, `temperature`, `cfg_scale`, `seed`,
                           `class_label`, file `condition`, `model`, `job` (all optional)
                                                                          -> image/png
    POST /api/complete     multipart `image`, `keep_top` [, sampling fields] -> image/png

Form fields may come multipart or urlencoded. Model work runs in a worker thread under the
model's lock, so long jobs block neither `/healthz` nor requests to other models.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from taming import images
from taming.serve import sampling
from taming.serve.models import Jobs, ServedModel
from taming.serve.page import PAGE
from taming.serve.uploads import HTTPError, Limits, check_image, read_form, upload_bytes

logger = logging.getLogger(__name__)

__all__ = ["create_app"]


def _number(form, name: str, cast: Callable, default: Any, check=None, what: str = "") -> Any:
    raw = form.get(name)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if not isinstance(raw, str):
        raise HTTPError(400, f"field '{name}' must be text, not a file")
    try:
        value = cast(raw.strip())
    except ValueError:
        raise HTTPError(400, f"field '{name}': expected {cast.__name__}, got {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise HTTPError(400, f"field '{name}' must be finite, got {raw!r}")
    if check is not None and not check(value):
        raise HTTPError(400, f"field '{name}' must be {what}, got {raw!r}")
    return value


def job_id(form) -> str | None:
    """The client's id for a job (so the page can follow its progress), if it sent one."""
    value = form.get("job")
    return value if isinstance(value, str) and value else None


def _png(x: torch.Tensor) -> Response:
    pil = images.to_pil(x[0]) if x.shape[0] == 1 else images.make_grid(x)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")


def _pick(entries: list[ServedModel], form, what: str) -> ServedModel:
    if not entries:
        raise HTTPError(404, f"no {what} is served (start the server with --transformer RUN)")
    name = form.get("model")
    if not name:
        return entries[0]
    for e in entries:
        if e.name == name:
            return e
    names = ", ".join(e.name for e in entries)
    raise HTTPError(400, f"no {what} named {name!r} (served: {names})")


def create_app(
    first_stages: list[ServedModel],
    transformers: list[ServedModel] | None = None,
    limits: Limits = Limits(),
) -> Starlette:
    """The Starlette app serving `first_stages` (reconstruction) and `transformers`."""
    transformers = list(transformers or [])
    jobs = Jobs()
    SampleError = sampling.sample_error()

    async def run_model(entry: ServedModel, job: str, fn: Callable[[], Any]) -> Any:
        def work() -> Any:
            with entry.lock:
                jobs.update(job, state="running")
                with torch.inference_mode():
                    return fn()

        try:
            return await run_in_threadpool(work)
        except SampleError as e:
            raise HTTPError(400, str(e).splitlines()[0]) from None
        finally:
            jobs.finish(job)

    def image_tensor(form_data: bytes, size: tuple[int, int], field: str = "image"):
        path = check_image(form_data, limits, field)
        try:
            return images.load(path, size=size)  # cover-resize + center crop (1, 3, H, W)
        except OSError as e:
            raise HTTPError(400, f"'{field}' could not be decoded ({e})") from None
        finally:
            path.unlink(missing_ok=True)

    def recon_size(form, entry: ServedModel) -> tuple[int, int]:
        f = entry.info["factor"]
        side = _number(
            form,
            "size",
            int,
            entry.info["size"][0],
            lambda v: f <= v <= limits.max_size,
            f"an integer in [{f}, {limits.max_size}]",
        )
        side = side // f * f
        return side, side

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "models": [e.name for e in first_stages],
                "transformers": [e.name for e in transformers],
                "jobs": len(jobs.snapshot()),
            }
        )

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "first_stages": [e.public() for e in first_stages],
                "transformers": [e.public() for e in transformers],
                "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels},
            }
        )

    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": jobs.snapshot()})

    async def encode_request(request: Request):
        form = await read_form(request, limits)
        entry = _pick(first_stages, form, "first stage")
        data, size = await upload_bytes(form, "image"), recon_size(form, entry)
        x = await run_in_threadpool(image_tensor, data, size)  # decoding is not the loop's
        return entry, form, x

    async def reconstruct(request: Request) -> Response:
        entry, form, x = await encode_request(request)
        stage = entry.model
        job = jobs.start("reconstruct", entry.name, 1, job_id(form))

        def fn() -> torch.Tensor:
            device = next(stage.parameters()).device
            quant = stage.encode(x.to(device))[0]
            return stage.decode(quant).clamp(-1, 1).cpu()

        return _png(await run_model(entry, job, fn))

    async def tokens(request: Request) -> Response:
        entry, form, x = await encode_request(request)
        stage = entry.model
        job = jobs.start("tokens", entry.name, 1, job_id(form))

        def fn() -> dict:
            device = next(stage.parameters()).device
            quant, _, info = stage.encode(x.to(device))
            h, w = quant.shape[-2:]
            grid = info.indices.reshape(h, w).cpu()  # (h, w) code ids, raster order
            return {"h": int(h), "w": int(w), "tokens": grid.tolist()}

        return JSONResponse(await run_model(entry, job, fn))

    def sampling_fields(form) -> dict:
        return {
            "top_k": _number(form, "top_k", int, None, lambda v: v >= 0, ">= 0") or None,
            "top_p": _number(form, "top_p", float, None, lambda v: 0 < v <= 1, "in (0, 1]"),
            "temperature": _number(form, "temperature", float, 1.0, lambda v: v > 0, "> 0"),
            "seed": _number(form, "seed", int, None),
        }

    async def sample(request: Request) -> Response:
        if not transformers:
            raise HTTPError(404, "no transformer is served (start with --transformer RUN)")
        form = await read_form(request, limits)
        entry = _pick(transformers, form, "transformer")
        n = _number(form, "n", int, 1, lambda v: 1 <= v <= limits.max_n, f"in [1, {limits.max_n}]")
        opts = sampling_fields(form)
        cfg_scale = _number(form, "cfg_scale", float, 1.0)
        cond: Any = _number(form, "class_label", int, None)
        if cond is not None and entry.info["kind"] != "class":
            raise HTTPError(400, f"'{entry.name}' is not class-conditional: drop class_label")
        data = await upload_bytes(form, "condition", required=False)
        if data is not None:
            path = check_image(data, limits, "condition")
            try:
                size = tuple(entry.info["size"])
                cond = await run_in_threadpool(
                    sampling.condition_from_file, entry.model, path, size
                )
            except SampleError as e:
                raise HTTPError(400, str(e).splitlines()[0]) from None
            finally:
                path.unlink(missing_ok=True)
        job = jobs.start("sample", entry.name, n, job_id(form))

        def fn() -> torch.Tensor:
            def progress(done: int, total: int) -> None:
                jobs.update(job, done=done)

            return sampling.sample(
                entry.model, n, cond, cfg_scale=cfg_scale, progress=progress, **opts
            )

        return _png(await run_model(entry, job, fn))

    async def complete(request: Request) -> Response:
        if not transformers:
            raise HTTPError(404, "no transformer is served (start with --transformer RUN)")
        form = await read_form(request, limits)
        entry = _pick(transformers, form, "transformer")
        keep = _number(form, "keep_top", float, 0.5, lambda v: 0 <= v <= 1, "in [0, 1]")
        opts = sampling_fields(form)
        cond = _number(form, "class_label", int, None)
        if cond is not None and entry.info["kind"] != "class":
            raise HTTPError(400, f"'{entry.name}' is not class-conditional: drop class_label")
        data = await upload_bytes(form, "image")
        x = await run_in_threadpool(image_tensor, data, tuple(entry.info["size"]))
        job = jobs.start("complete", entry.name, 1, job_id(form))

        def fn() -> torch.Tensor:
            return sampling.complete(entry.model, x, keep, cond=cond, **opts)

        return _png(await run_model(entry, job, fn))

    async def http_error(request: Request, exc: HTTPError) -> Response:
        return PlainTextResponse(exc.message + "\n", status_code=exc.status)

    async def server_error(request: Request, exc: Exception) -> Response:
        logger.exception("%s %s failed", request.method, request.url.path)
        return PlainTextResponse(f"internal error: {type(exc).__name__}\n", status_code=500)

    routes = [
        Route("/", page),
        Route("/healthz", healthz),
        Route("/api/models", models),
        Route("/api/jobs", list_jobs),
        Route("/api/reconstruct", reconstruct, methods=["POST"]),
        Route("/api/tokens", tokens, methods=["POST"]),
        Route("/api/sample", sample, methods=["POST"]),
        Route("/api/complete", complete, methods=["POST"]),
    ]
    return Starlette(
        routes=routes, exception_handlers={HTTPError: http_error, Exception: server_error}
    )
