"""The pydantic -> structural schema converter, on small models built for each behaviour."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from corral.api import schemas
from corral.api.common import Model
from corral.api.placement import Quantity


class Leaf(Model):
    """A leaf."""

    size: int = Field(default=3, ge=1, le=9, description="How big.")


class Tree(Model):
    """A tree."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": "true", "message": "ok"}]}
    )

    name: str = Field(min_length=1, max_length=8, pattern="^[a-z]+$", description="Its name.")
    leaf: Leaf | None = Field(default=None, description="The leaf on top.")
    leaves: list[Leaf] = Field(max_length=4, description="Other leaves.")
    labels: dict[str, str] | None = Field(default=None, max_length=2)
    sizes: dict[str, Quantity] | None = None
    ratio: float = Field(default=0.5, gt=0, lt=1)


def test_optional_fields_are_not_required_and_carry_no_null() -> None:
    schema = schemas.from_model(Tree)

    assert schema["required"] == ["name", "leaves"]
    assert "anyOf" not in schema["properties"]["leaf"]
    assert "default" not in schema["properties"]["leaf"]
    assert schema["properties"]["leaf"]["type"] == "object"


def test_references_are_inlined_with_the_field_description_winning() -> None:
    leaf = schemas.from_model(Tree)["properties"]["leaf"]

    assert leaf["description"] == "The leaf on top."
    assert leaf["properties"]["size"] == {
        "type": "integer",
        "default": 3,
        "minimum": 1,
        "maximum": 9,
        "description": "How big.",
    }


def test_list_items_and_map_values_are_converted() -> None:
    properties = schemas.from_model(Tree)["properties"]

    assert properties["leaves"]["maxItems"] == 4
    assert properties["leaves"]["items"]["properties"]["size"]["type"] == "integer"
    assert properties["labels"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "maxProperties": 2,
    }


def test_quantities_become_int_or_string() -> None:
    value = schemas.from_model(Tree)["properties"]["sizes"]["additionalProperties"]

    assert value["x-kubernetes-int-or-string"] is True
    assert value["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "pattern" in value


def test_titles_are_dropped_and_validations_kept() -> None:
    schema = schemas.from_model(Tree)

    assert "title" not in str(schema)
    assert schema["x-kubernetes-validations"] == [{"rule": "true", "message": "ok"}]
    assert schema["properties"]["name"]["pattern"] == "^[a-z]+$"


def test_exclusive_bounds_use_the_openapi_v3_boolean_form() -> None:
    ratio = schemas.from_model(Tree)["properties"]["ratio"]

    assert ratio["minimum"] == 0
    assert ratio["exclusiveMinimum"] is True
    assert ratio["maximum"] == 1
    assert ratio["exclusiveMaximum"] is True


class Union(BaseModel):
    value: int | bool


class Recursive(BaseModel):
    children: list[Recursive] | None = None


class FreeForm(BaseModel):
    data: dict[str, Any]


class Tuple(BaseModel):
    pair: tuple[int, int]


class Keys(BaseModel):
    names: dict[Annotated[str, Field(pattern="^a")], int]


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (Union, "unions other than int-or-string"),
        (Recursive, "refers to itself"),
        (FreeForm, "free-form maps need x-kubernetes-preserve-unknown-fields"),
        (Tuple, "has no CRD equivalent"),
        (Keys, "'patternProperties' has no CRD equivalent"),
    ],
    ids=["union", "recursion", "free-form-map", "tuple", "key-pattern"],
)
def test_constructs_a_crd_cannot_express_are_refused_with_the_field_named(
    model: type[BaseModel], problem: str
) -> None:
    with pytest.raises(schemas.NotStructural, match=problem) as raised:
        schemas.from_model(model)

    assert str(raised.value).startswith(".")
