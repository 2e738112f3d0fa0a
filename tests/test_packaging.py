"""Packaging invariants.

requirements-v28.txt pins exactly pyproject.toml's packages, each inside its range, and the shipped
type stub lists exactly the functions the compiled module exports.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirement_lines(path: Path) -> list[str]:
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return [ln for ln in lines if ln]


def test_requirements_file_pins_pyprojects_packages_inside_its_ranges() -> None:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]
    pins = [Requirement(r) for r in _requirement_lines(ROOT / "requirements-v28.txt")]
    assert [(p.name, p.extras) for p in pins] == [(w.name, w.extras) for w in wanted]
    for p, w in zip(pins, wanted, strict=True):
        (spec,) = p.specifier  # one exact version a package
        assert spec.operator == "==", f"requirements-v28.txt: {p} is not an exact pin"
        assert w.specifier.contains(spec.version), f"{p} is outside pyproject.toml's {w}"


def test_core_stub_lists_every_compiled_function() -> None:
    from v28quant import _core as core

    stub = ast.parse((Path(core.__file__).parent / "_core.pyi").read_text())
    stubbed = {n.name for n in stub.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    exported = {n for n in dir(core) if not n.startswith("_")}
    assert stubbed == exported, (
        f"_core.pyi is stale (run `make stubs`): only in module {exported - stubbed}, "
        f"only in stub {stubbed - exported}"
    )


def test_aggregator_defaults_ship_inside_the_package() -> None:
    # the wheel packs every file under python/v28quant that git does not ignore
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["scikit-build"]
    assert "python/v28quant" in config["wheel"]["packages"]
    from importlib import resources

    shipped = resources.files("v28quant").joinpath("aggregator_weights.toml")
    assert shipped.is_file()
    assert "weights" in tomllib.loads(shipped.read_text(encoding="utf-8"))
    import subprocess

    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "python/v28quant/aggregator_weights.toml"], cwd=ROOT
    )
    assert ignored.returncode == 1, "aggregator_weights.toml is git-ignored: it would not ship"
