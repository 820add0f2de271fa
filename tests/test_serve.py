"""`taming serve`: the web app's endpoints on tiny random models (Starlette TestClient and a
real uvicorn), checked against the library's own sampling and reconstruction calls."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from serve_helpers import png_bytes, served, uvicorn_server  # noqa: E402
from taming import images  # noqa: E402
from taming.serve import Limits, create_app  # noqa: E402
from taming.serve import sampling as serve_sampling  # noqa: E402
from tiny_net2net import build_model  # noqa: E402


@pytest.fixture(scope="module")
def models() -> dict:
    return {kind: build_model(kind) for kind in ("uncond", "class", "seg")}


@pytest.fixture(scope="module")
def client(models) -> TestClient:
    stages, transformers = served(models)
    return TestClient(create_app(stages, transformers))


def decode(resp) -> Image.Image:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(resp.content)).convert("RGB")


def px(im: Image.Image) -> list:
    return np.asarray(im).tolist()


def upload(data: bytes, name: str = "photo.png") -> dict:
    return {"image": (name, data, "application/octet-stream")}


def test_page_and_health(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for element in ("recon-file", "sample-go", "complete-go"):
        assert element in page.text
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["transformers"] == ["uncond", "class", "seg"]
    info = client.get("/api/models").json()
    assert [t["kind"] for t in info["transformers"]] == ["unconditional", "class", "segmentation"]
    assert info["first_stages"][0]["factor"] == 2 and info["first_stages"][0]["size"] == [16, 16]


def test_reconstruct_equals_the_model_on_the_center_crop(client, models, tmp_path):
    data = png_bytes((40, 30), seed=1)
    got = decode(client.post("/api/reconstruct", files=upload(data), data={"size": "24"}))
    assert got.size == (24, 24)
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    stage = models["uncond"].first_stage_model
    with torch.no_grad():
        x = images.load(path, size=24)  # the documented helper: cover-resize, center crop
        want = images.to_pil(stage.decode(stage.encode(x)[0])[0])
    assert px(got) == px(want)
    grid = client.post("/api/tokens", files=upload(data), data={"size": "24"}).json()
    with torch.no_grad():
        ids = stage.encode(x)[2].indices.reshape(12, 12)
    assert (grid["h"], grid["w"]) == (12, 12) and grid["tokens"] == ids.tolist()
    # a large photo is fitted to the model's size (16 by default)
    assert decode(client.post("/api/reconstruct", files=upload(png_bytes((300, 200))))).size == (
        16,
        16,
    )


def test_bad_uploads_get_4xx_and_the_server_keeps_serving(models):
    stages, transformers = served(models)
    small = TestClient(create_app(stages, transformers, Limits(max_bytes=4000, max_pixels=900)))
    cases = [
        (upload(png_bytes((64, 64))), 413, "upload too large"),  # ~12 kB > 4000 bytes
        (upload(png_bytes((31, 31), fmt="JPEG")), 413, "pixels"),  # 961 > 900 pixels
        (upload(b"this is not an image"), 415, "not an image"),
        (upload(png_bytes((20, 20))[:100]), 400, "could not be decoded"),  # truncated PNG
        (upload(b""), 400, "empty"),
        ({"other": ("x.png", png_bytes((8, 8)), "image/png")}, 400, "missing file field"),
    ]
    for files, status, text in cases:
        r = small.post("/api/reconstruct", files=files)
        assert r.status_code == status, (text, r.status_code, r.text)
        assert text in r.text and len(r.text.strip().splitlines()) == 1
        assert "Traceback" not in r.text
        assert small.get("/healthz").json()["status"] == "ok"
    r = small.post("/api/reconstruct", files=upload(png_bytes((8, 8))), data={"size": "x"})
    assert r.status_code == 400 and "size" in r.text


def test_sample_seeded_and_equal_to_the_library(client, models):
    form = {"n": "1", "seed": "5", "top_k": "10", "temperature": "1.0", "model": "uncond"}
    a = decode(client.post("/api/sample", data=form))  # urlencoded
    b = decode(client.post("/api/sample", files={"n": (None, "1")}, data={**form, "n": "1"}))
    c = decode(client.post("/api/sample", data={**form, "seed": "6"}))
    assert a.size == (16, 16) and px(a) == px(b)
    assert px(a) != px(c)
    api = serve_sampling._api()
    with torch.no_grad():
        want = api.sample_images(
            models["uncond"], 1, top_k=10, generator=torch.Generator().manual_seed(5)
        )
    assert px(a) == px(images.to_pil(want[0]))
    grid = decode(client.post("/api/sample", data={**form, "n": "4"}))
    assert grid.size == (2 * 18 + 2, 2 * 18 + 2)  # 2x2 grid with 2 px padding


def test_sample_class_rules(client, models):
    ok = client.post("/api/sample", data={"model": "class", "class_label": "2", "seed": "1"})
    assert decode(ok).size == (16, 16)
    bad = client.post("/api/sample", data={"model": "uncond", "class_label": "2"})
    assert bad.status_code == 400 and "not class-conditional" in bad.text
    out = client.post("/api/sample", data={"model": "class", "class_label": "9"})
    assert out.status_code == 400 and "out of range" in out.text
    for field, value in (("n", "0"), ("top_p", "2"), ("temperature", "nan"), ("n", "two")):
        r = client.post("/api/sample", data={"model": "uncond", field: value})
        assert r.status_code == 400 and field in r.text, (field, r.text)


def test_complete_keeps_the_top_and_equals_the_library(client, models, tmp_path):
    data = png_bytes((16, 16), seed=3)
    form = {"keep_top": "0.5", "seed": "2", "model": "uncond"}
    got = decode(client.post("/api/complete", files=upload(data), data=form))
    path = tmp_path / "c.png"
    path.write_bytes(data)
    api = serve_sampling._api()
    with torch.no_grad():
        want, _, known = api.complete_image(
            models["uncond"],
            images.load(path, size=16),
            1,
            keep_top=0.5,
            generator=torch.Generator().manual_seed(2),
        )
    assert known[:4].all() and not known[4:].any()
    assert px(got) == px(images.to_pil(want[0]))


def test_without_transformer_sampling_is_404(models):
    stages, _ = served(models)
    c = TestClient(create_app(stages, []))
    r = c.post("/api/sample", data={"n": "1"})
    assert r.status_code == 404 and "--transformer" in r.text
    assert c.post("/api/complete", files=upload(png_bytes())).status_code == 404
    assert decode(c.post("/api/reconstruct", files=upload(png_bytes()))).size == (16, 16)


def test_a_long_job_does_not_block_other_requests(models):
    import httpx

    stages, transformers = served(models)
    app = create_app(stages, transformers)
    entry = transformers[0]
    with uvicorn_server(app) as url:
        entry.lock.acquire()  # the model is busy with a long job
        result = {}

        def request() -> None:
            data = {"n": "1", "seed": "1", "model": "uncond", "job": "waiting"}
            result["r"] = httpx.post(f"{url}/api/sample", data=data, timeout=60)

        t = threading.Thread(target=request)
        t.start()
        try:
            deadline = time.time() + 20
            while not httpx.get(f"{url}/api/jobs").json()["jobs"]:
                assert time.time() < deadline
                time.sleep(0.05)
            t0 = time.perf_counter()
            assert httpx.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
            assert time.perf_counter() - t0 < 2.0
            jobs = httpx.get(f"{url}/api/jobs").json()["jobs"]
            assert [(j["id"], j["state"]) for j in jobs] == [("waiting", "queued")]
            # another model answers meanwhile
            r = httpx.post(f"{url}/api/reconstruct", files=upload(png_bytes()), timeout=30)
            assert r.status_code == 200
        finally:
            entry.lock.release()
        t.join(60)
        assert result["r"].status_code == 200
        assert httpx.get(f"{url}/api/jobs").json()["jobs"] == []


def test_sample_from_an_uploaded_segmentation_map(client, models, tmp_path):
    labels = png_bytes((16, 16), seed=5, mode="L")  # label ids 0..4 (the tiny model has 5)
    form = {"model": "seg", "seed": "4", "top_k": "10"}
    files = {"condition": ("seg.png", labels, "image/png")}
    got = decode(client.post("/api/sample", data=form, files=files))
    path = tmp_path / "seg.png"
    path.write_bytes(labels)
    api = serve_sampling._api()
    model = models["seg"]
    with torch.no_grad():
        cond = api.load_condition(model, path, size=(16, 16))  # one-hot (1, 5, 16, 16)
        want = api.sample_images(
            model, 1, cond, top_k=10, generator=torch.Generator().manual_seed(4)
        )
    assert px(got) == px(images.to_pil(want[0]))
    r = client.post("/api/sample", data=form, files={"condition": ("x.png", b"no", "image/png")})
    assert r.status_code == 415


def test_load_served_reads_run_folders(tmp_path):
    from taming.serve import load_served
    from test_sample_cli import write_run

    run = write_run(tmp_path, "class")
    stages, transformers = load_served([str(run)], [str(run), str(run)])
    assert [e.name for e in transformers] == [run.name, f"{run.name}-2"]
    assert transformers[0].info == {
        "kind": "class",
        "n_classes": 4,
        "size": [16, 16],
        "factor": 2,
        "tokens": [8, 8],
    }
    assert stages[0].info == {"kind": "first_stage", "factor": 2, "size": [16, 16]}
    c = TestClient(create_app(stages, transformers))
    assert decode(c.post("/api/sample", data={"class_label": "3", "seed": "0"})).size == (16, 16)
