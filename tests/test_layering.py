"""The package's layers, read from the source with `ast` (every import, lazy ones included).

Bottom up (HELPERS.md / DESIGN.md): `modules`, `quantize`, `transformer`, `losses`, `data`,
`compat` (and the small shared `config`, `images`, `schedules`, `compiling`) -> `autoencoder`,
the cond stages -> token-level `sampling` -> the models that sample (`cond.net2net`,
`cond.generation`) and `loading` -> the image-level `pipeline`, `metrics` -> `train` (the
only Lightning user) -> `commands` / `cli`. Nothing imports upward; `sampling/` imports only
`transformer/` of the package; nothing under `autoencoder/`, `quantize/`, `transformer/`,
`cond/` imports Lightning.
Modules not named here (packages added later) are not ranked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "taming"

RANKS = {
    "taming.modules": 0,
    "taming.quantize": 0,
    "taming.transformer": 0,
    "taming.losses": 0,
    "taming.data": 0,
    "taming.compat": 0,
    "taming.config": 0,
    "taming.images": 0,
    "taming.schedules": 0,
    "taming.compiling": 0,  # checked torch.compile, shared by the codec and the GPT
    "taming.runref": 0,  # stage configs named by their run (config level)
    "taming.autoencoder": 1,
    "taming.cond.stages": 1,
    "taming.sampling": 2,
    "taming.cond.net2net": 3,
    "taming.cond.generation": 3,
    "taming.cond": 3,  # the package's __init__ re-exports the model
    "taming.loading": 4,
    "taming.models": 4,  # the original's import paths, aliases of the classes above
    "taming.pipeline": 5,
    "taming.metrics": 5,
    "taming.train": 6,
    "taming.commands": 7,
    "taming.cli": 7,
}


def rank(module: str) -> int | None:
    """The rank of the longest ranked prefix of `module`, or None."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in RANKS:
            return RANKS[name]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """`(line, imported module)` of every import in a file (the module `module`, default its
    place under `src/`), relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    here = (module or module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from taming.x import y` may name a submodule y: rank it as taming.x.y
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return out


FILES = sorted(SRC.rglob("*.py"))


def test_the_source_is_found():
    assert any(module_name(p) == "taming.sampling.sample" for p in FILES)
    assert rank("taming.pipeline.sample") == 5 and rank("taming.cond.stages") == 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_nothing_imports_upward(path):
    mine = rank(module_name(path))
    if mine is None:
        return
    bad = []
    for line, name in imports(path):
        if not name.startswith("taming.") or name == module_name(path):
            continue
        theirs = rank(name)
        if theirs is not None and theirs > mine:
            bad.append(f"{path.name}:{line} imports {name} (layer {theirs} > {mine})")
    assert not bad, bad


def test_token_sampling_imports_only_the_transformer():
    for path in (SRC / "sampling").rglob("*.py"):
        for line, name in imports(path):
            if name == "taming" or name.startswith("taming."):
                top = ".".join(name.split(".")[:2])
                assert top in ("taming.sampling", "taming.transformer"), (path.name, line, name)


@pytest.mark.parametrize("package", ["autoencoder", "quantize", "transformer", "cond"])
def test_model_code_does_not_import_lightning(package):
    for path in (SRC / package).rglob("*.py"):
        for line, name in imports(path):
            root = name.split(".")[0]
            assert root not in ("lightning", "pytorch_lightning"), (path.name, line, name)


def test_the_checks_see_an_upward_import(tmp_path):
    """The reader resolves what a violation looks like (a lazy, relative import)."""
    fake = tmp_path / "probe.py"
    fake.write_text("def f():\n    from ..pipeline import sample_images\n")
    names = [n for _, n in imports(fake, "taming.sampling.probe")]
    assert "taming.pipeline" in names
    assert rank("taming.pipeline") > rank("taming.sampling.probe")
