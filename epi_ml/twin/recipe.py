"""Growth recipes: the YAML format engineers write by hand, and the library of real structures.

A recipe is a list of steps: growth layers, growth interrupts and `repeat` blocks (superlattices,
DBRs, multiple quantum wells). A layer names its material, target thickness and composition, and
either explicit cell set points (`cells: {Ga: 975.0}`) or a target growth rate, from which the tool
picks set points with its current flux calibration, as an engineer does. The full format is in
docs/twin.md ("Recipe format"); the library is in epi_ml/twin/recipes/*.yaml.

    name: hemt_algaas_gaas
    rotation_rpm: 10
    substrate_c: 580          # default surface (pyrometer) temperature of every step
    growth_rate_um_h: 0.8
    layers:
      - {material: GaAs, thickness_nm: 500, label: buffer}
      - {interrupt: 30}
      - {material: AlGaAs, thickness_nm: 25, composition: 0.30, dopants: {Si: 1180}}
      - repeat: 10
        layers: [{material: AlAs, thickness_nm: 2}, {material: GaAs, thickness_nm: 2}]

Errors name the file, the step (1-based, `step 4 > 2` inside a repeat) and what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from epi_ml.physics import GROUP_III_OF, TERNARIES

Measure = Literal["xrd", "pl"]
DOPANT_CELLS = ("Si", "Be")
GROUP_III_CELLS = ("Ga", "Al", "In")


class RecipeError(ValueError):
    """A recipe that cannot be used, with the file and step it comes from."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrowthLayer(_Strict):
    """Shutters of the material's group-III cells (and the listed dopants) open for the layer."""

    material: Literal["GaAs", "AlAs", "InAs", "AlGaAs", "InGaAs"]
    thickness_nm: Annotated[float, Field(gt=0, le=20_000)] | None = None
    composition: Annotated[float, Field(gt=0, lt=1)] | None = None
    growth_rate_um_h: Annotated[float, Field(gt=0.01, le=5)] | None = None
    cells: dict[str, Annotated[float, Field(ge=100, le=1400)]] | None = None
    duration_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    substrate_c: Annotated[float, Field(ge=200, le=750)] | None = None
    as_valve: Annotated[float, Field(ge=0, le=100)] | None = None
    v_iii: Annotated[float, Field(gt=0, le=200)] | None = None
    dopants: dict[str, Annotated[float, Field(ge=100, le=1400)]] = Field(default_factory=dict)
    measure: list[Measure] | None = None
    label: str | None = None

    @field_validator("cells")
    @classmethod
    def _known_cells(cls, cells: dict[str, float] | None) -> dict[str, float] | None:
        unknown = sorted(set(cells or {}) - set(GROUP_III_CELLS))
        if unknown:
            raise ValueError(
                f"cells {unknown} are not group-III cells ({', '.join(GROUP_III_CELLS)})"
            )
        return cells

    @field_validator("dopants")
    @classmethod
    def _known_dopants(cls, dopants: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(dopants) - set(DOPANT_CELLS))
        if unknown:
            raise ValueError(f"dopants {unknown} are not dopant cells ({', '.join(DOPANT_CELLS)})")
        return dopants

    @model_validator(mode="after")
    def _consistent(self) -> GrowthLayer:
        ternary = self.material in TERNARIES
        if ternary and self.composition is None:
            raise ValueError(f"composition (x) is required for {self.material}")
        if not ternary and self.composition is not None:
            raise ValueError(f"{self.material} is a binary: remove composition")
        if self.thickness_nm is None and self.duration_s is None:
            raise ValueError("give thickness_nm (target) or duration_s (shutter-open time)")
        if self.cells is not None:
            needed = set(GROUP_III_OF[self.material])
            if set(self.cells) != needed:
                raise ValueError(
                    f"cells must set exactly {sorted(needed)} for {self.material}, "
                    f"got {sorted(self.cells)}"
                )
        if self.as_valve is not None and self.v_iii is not None:
            raise ValueError("give as_valve (%) or v_iii (BEP ratio), not both")
        return self

    @property
    def group_iii(self) -> tuple[str, ...]:
        return GROUP_III_OF[self.material]

    @property
    def x(self) -> float:
        return self.composition or 0.0


class Interrupt(_Strict):
    """Growth interrupt: group-III shutters closed, As on; optionally a new substrate temperature
    (ramped during the interrupt) or open dopant shutters (delta doping)."""

    interrupt: Annotated[float, Field(gt=0, le=86_400)]
    substrate_c: Annotated[float, Field(ge=200, le=750)] | None = None
    dopants: dict[str, Annotated[float, Field(ge=100, le=1400)]] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("dopants")
    @classmethod
    def _known_dopants(cls, dopants: dict[str, float]) -> dict[str, float]:
        return GrowthLayer._known_dopants(dopants)


def _step_kind(item: Any) -> str | None:
    """Choose the step type by its key, so errors talk about the right kind of step."""
    if isinstance(item, dict):
        for key, kind in (("repeat", "repeat"), ("interrupt", "interrupt"), ("material", "layer")):
            if key in item:
                return kind
        return None
    kinds: dict[type, str] = {GrowthLayer: "layer", Interrupt: "interrupt", Repeat: "repeat"}
    return kinds.get(type(item))


StepItem = Annotated[
    Annotated[GrowthLayer, Tag("layer")]
    | Annotated[Interrupt, Tag("interrupt")]
    | Annotated["Repeat", Tag("repeat")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message=(
            "a step needs `material` (layer), `interrupt` (seconds) or `repeat` (count)"
        ),
    ),
]


class Repeat(_Strict):
    repeat: Annotated[int, Field(ge=1, le=500)]
    layers: Annotated[list[StepItem], Field(min_length=1)]


Step = GrowthLayer | Interrupt


class Deox(_Strict):
    """Oxide desorption before growth: surface temperature and hold time under As."""

    substrate_c: Annotated[float, Field(ge=500, le=700)] = 620.0
    duration_s: Annotated[float, Field(ge=0, le=7200)] = 600.0


class Recipe(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    substrate: str = "GaAs(001), 3 inch"
    rotation_rpm: Annotated[float, Field(ge=0, le=60)] = 10.0
    substrate_c: Annotated[float, Field(ge=200, le=750)] = 580.0
    growth_rate_um_h: Annotated[float, Field(gt=0.01, le=5)] = 0.8
    v_iii: Annotated[float, Field(gt=0, le=200)] = 15.0
    deox: Deox = Field(default_factory=Deox)
    layers: Annotated[list[StepItem], Field(min_length=1)]

    @model_validator(mode="after")
    def _grows_something(self) -> Recipe:
        if not any(isinstance(s, GrowthLayer) for s in self.steps):
            raise ValueError("a recipe needs at least one growth layer")
        return self

    @property
    def steps(self) -> list[Step]:
        """Layers and interrupts in growth order, repeat blocks unrolled (index = position + 1)."""
        return list(_unroll(self.layers))

    @property
    def growth_layers(self) -> list[tuple[int, GrowthLayer]]:
        return [(i, s) for i, s in enumerate(self.steps, 1) if isinstance(s, GrowthLayer)]

    @property
    def cells_used(self) -> list[str]:
        used: set[str] = set()
        for step in self.steps:
            if isinstance(step, GrowthLayer):
                used.update(step.group_iii)
            used.update(step.dopants)
        return [c for c in (*GROUP_III_CELLS, *DOPANT_CELLS) if c in used]

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        data = {"name": self.name, **{k: v for k, v in data.items() if k != "name"}}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()


def _unroll(items: list[Any]) -> Iterator[Step]:
    for item in items:
        if isinstance(item, Repeat):
            for _ in range(item.repeat):
                yield from _unroll(item.layers)
        else:
            yield item


def _where(loc: tuple[Any, ...]) -> str:
    """('layers', 3, 'layers', 0, 'composition') -> 'step 4 > 1: composition'."""
    steps, fields = [], []
    i = 0
    while i < len(loc):
        if loc[i] == "layers" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            steps.append(str(loc[i + 1] + 1))
            i += 2
            continue
        if isinstance(loc[i], str) and loc[i] not in ("layer", "interrupt", "repeat"):
            fields.append(loc[i])
        i += 1
    where = f"step {' > '.join(steps)}" if steps else "recipe"
    return f"{where}: {'.'.join(fields)}" if fields else where


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for e in error.errors():
        message = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {_where(tuple(e['loc']))}: {message}")
    return "\n".join(dict.fromkeys(lines))


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a YAML mapping with `name` and `layers`")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_describe(exc, source)) from None


def load_recipe(path_or_name: str | Path) -> Recipe:
    """A recipe from a YAML file, or from the library by name (`hemt_algaas_gaas`)."""
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise RecipeError(f"{path}: no such recipe file")
        text, source = path.read_text(), str(path)
    else:
        name = str(path_or_name)
        if name not in library_names():
            raise RecipeError(f"no recipe named {name!r}; library: {', '.join(library_names())}")
        text = (resources.files("epi_ml.twin") / "recipes" / f"{name}.yaml").read_text()
        source = f"library:{name}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{source}: not valid YAML: {exc}") from None
    return parse_recipe(data, source)


def library_names() -> list[str]:
    folder = resources.files("epi_ml.twin") / "recipes"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_library() -> dict[str, Recipe]:
    return {name: load_recipe(name) for name in library_names()}


Repeat.model_rebuild()
Recipe.model_rebuild()
