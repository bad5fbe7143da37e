"""Recipe format: the library of real structures, hand-written files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from epi_ml.twin.recipe import (
    GrowthLayer,
    Interrupt,
    RecipeError,
    library_names,
    load_recipe,
    parse_recipe,
)

LIBRARY = {
    "gaas_buffer",
    "hemt_algaas_gaas",
    "qw_ingaas_gaas",
    "dbr_alas_gaas",
    "rheed_calibration",
    "xrd_calibration",
}


def test_library_holds_the_real_structures() -> None:
    assert set(library_names()) >= LIBRARY
    hemt = load_recipe("hemt_algaas_gaas")
    barrier = next(s for s in hemt.steps if isinstance(s, GrowthLayer) and s.label == "barrier")
    assert barrier.material == "AlGaAs" and barrier.composition == pytest.approx(0.30)
    assert hemt.cells_used == ["Ga", "Al", "Si"]
    dbr = load_recipe("dbr_alas_gaas")
    assert sum(1 for s in dbr.steps if isinstance(s, GrowthLayer) and s.material == "AlAs") == 15
    qw = load_recipe("qw_ingaas_gaas")
    wells = [s for s in qw.steps if isinstance(s, GrowthLayer) and s.material == "InGaAs"]
    assert len(wells) == 3 and all(w.substrate_c is None for w in wells)
    assert any(isinstance(s, Interrupt) and s.substrate_c == 510 for s in qw.steps)
    assert load_recipe("rheed_calibration").rotation_rpm == 0


def test_yaml_round_trip_and_hash() -> None:
    for name in LIBRARY:
        recipe = load_recipe(name)
        again = parse_recipe(yaml.safe_load(recipe.to_yaml()))
        assert again == recipe and again.sha256 == recipe.sha256


def test_a_hand_written_file(tmp_path: Path) -> None:
    path = tmp_path / "my_hemt.yaml"
    path.write_text(
        "name: my_hemt\n"
        "substrate_c: 600\n"
        "layers:\n"
        "  - {material: GaAs, thickness_nm: 300, cells: {Ga: 985.0}, as_valve: 55}\n"
        "  - {interrupt: 20}\n"
        "  - {material: AlGaAs, composition: 0.25, thickness_nm: 20,\n"
        "     cells: {Ga: 985.0, Al: 1070}}\n"
        "  - repeat: 2\n"
        "    layers: [{material: AlAs, duration_s: 10}, {material: GaAs, thickness_nm: 3}]\n"
    )
    recipe = load_recipe(path)
    assert [type(s).__name__ for s in recipe.steps] == [
        "GrowthLayer",
        "Interrupt",
        "GrowthLayer",
    ] + ["GrowthLayer"] * 4
    assert recipe.steps[0].cells == {"Ga": 985.0}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [{"material": "GaAs", "thickness_nm": 5}, {"material": "AlGaAs", "thickness_nm": 5}],
            "step 2: composition (x) is required for AlGaAs",
        ),
        (
            [
                {"material": "GaAs", "thickness_nm": 5},
                {
                    "repeat": 2,
                    "layers": [{"interrupt": 3}, {"material": "GaAs", "thickness_nm": -1}],
                },
            ],
            "step 2 > 2: thickness_nm: Input should be greater than 0",
        ),
        (
            [{"material": "GaAs", "thickness_nm": 5, "cells": {"Al": 1000}}],
            "step 1: cells must set exactly ['Ga'] for GaAs",
        ),
        ([{"colour": 1}], "step 1: a step needs `material`"),
        ([{"material": "GaN", "thickness_nm": 5}], "step 1: material: Input should be"),
        ([{"material": "GaAs"}], "step 1: give thickness_nm (target) or duration_s"),
        (
            [{"material": "GaAs", "thickness_nm": 5, "speed": 3}],
            "step 1: speed: Extra inputs are not permitted",
        ),
        ([{"interrupt": 30}], "recipe: a recipe needs at least one growth layer"),
    ],
)
def test_errors_name_the_file_the_step_and_the_problem(
    tmp_path: Path, layers: list, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "layers": layers}))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_unknown_names_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no recipe named 'nope'; library: "):
        load_recipe("nope")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nlayers: [\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(broken)
