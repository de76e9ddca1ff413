"""Property tests: every wire model survives JSON and model_dump round trips unchanged.

Instances are generated from the field annotations, with a random subset of the optional
fields set, so the set-field tracking is exercised too.
"""

from __future__ import annotations

import datetime as dt
import enum
import pickle
import types
import typing
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tinker import _wire
from tinker import types as T

MODELS = sorted(
    (
        getattr(T, name)
        for name in T.__all__
        if isinstance(getattr(T, name), type)
        and issubclass(getattr(T, name), T.WireModel)
        and getattr(T, name) is not T.WireModel
    ),
    key=lambda cls: cls.__name__,
)

JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_LEAVES | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
DATETIMES = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5))]),
) | st.datetimes(min_value=dt.datetime(1990, 1, 1))
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
FLOAT32S = st.floats(allow_nan=False, allow_infinity=False, width=32)


@st.composite
def tensor_data(draw: st.DrawFn) -> T.TensorData:
    dtype = draw(st.sampled_from(["int64", "float32"]))
    values = st.integers(-(2**62), 2**62) if dtype == "int64" else FLOAT32S
    data = draw(st.lists(values, max_size=6))
    shape: list[int] | None = draw(st.sampled_from([None, [len(data)], [1, len(data)]]))
    return T.TensorData(data=data, dtype=dtype, shape=shape)


def custom_loss_request() -> st.SearchStrategy[T.CreateCustomLossRequest]:
    graph = T.CustomLossGraph(nodes=[T.CustomLossNode(op="output", name="out", target="output")])
    return st.builds(
        T.CreateCustomLossRequest,
        session_id=st.text(max_size=5),
        custom_loss_seq_id=st.integers(0, 9),
        name=st.text(max_size=5),
        inputs=st.lists(
            st.builds(T.CustomLossInput, name=st.just("advantages"), rank=st.sampled_from([0, 1])),
            max_size=1,
        ).map(lambda rest: [T.CustomLossInput(name="logprobs", rank=1), *rest]),
        graph=st.just(graph),
    )


OVERRIDES: dict[Any, st.SearchStrategy[Any]] = {
    T.TensorData: tensor_data(),
    T.GetBillingUsageRequest: st.just(
        T.GetBillingUsageRequest(
            starting_on="2026-01-01T00:00:00Z",
            ending_before=dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc),
        )
    ),
    T.CreateCustomLossRequest: custom_loss_request(),
}


def same(a: Any, b: Any) -> bool:
    """Equal in every field value (`==` cannot say: TensorData compares by identity, as in the
    SDK 0.38); which fields were set is checked separately."""
    return type(a) is type(b) and a.model_dump(mode="json") == b.model_dump(mode="json")


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    if tp in OVERRIDES:
        return OVERRIDES[tp]
    if tp is Any:
        return JSON_VALUES
    if tp is type(None):
        return st.none()
    simple = {
        str: st.text(max_size=8),
        int: st.integers(-1, 2**40),
        float: FLOATS,
        bool: st.booleans(),
        bytes: st.binary(max_size=8),
        dt.datetime: DATETIMES,
    }.get(tp)
    if simple is not None:
        return simple
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in args])
    if origin in (list, typing.Sequence, __import__("collections.abc").abc.Sequence):
        return st.lists(strategy_for(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=5), strategy_for(args[1]), max_size=3)
    if origin is tuple:
        return st.tuples(*(strategy_for(a) for a in args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, T.WireModel):
        return st.deferred(lambda: models(tp))
    raise AssertionError(f"no strategy for {tp!r}")


@st.composite
def models(draw: st.DrawFn, cls: type[T.WireModel]) -> T.WireModel:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if not field.init:
            continue
        optional = field.default is not attrs.NOTHING
        if optional and not draw(st.booleans()):
            continue
        kwargs[field.name] = draw(strategy_for(hints[field.name]))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, KeyError):
        reject()


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


def test_every_public_model_is_covered() -> None:
    assert len(MODELS) > 60
    for cls in MODELS:
        strategy_for(cls)


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
@SETTINGS
@given(data=st.data())
def test_json_round_trip(cls: type[T.WireModel], data: st.DataObject) -> None:
    obj = data.draw(strategy_for(cls))
    encoded = _wire.dumps(obj)
    back = _wire.structure(_wire.loads(encoded), cls)
    assert same(back, obj)
    assert T.fields_set(back) == T.fields_set(obj)
    assert _wire.dumps(back) == encoded
    modern = _wire.dumps(obj, era="0.38")
    again = _wire.structure(_wire.loads(modern), cls)
    assert _wire.dumps(again, era="0.38") == modern
    assert b":null" not in modern or b":null" in _wire.dumps(obj.model_dump())


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
@SETTINGS
@given(data=st.data())
def test_model_dump_copy_and_pickle_round_trip(cls: type[T.WireModel], data: st.DataObject) -> None:
    obj = data.draw(strategy_for(cls))
    assert same(cls.model_validate(obj.model_dump()), obj)
    assert same(cls.model_validate(obj.model_dump(mode="json")), obj)
    assert same(obj.model_copy(), obj) and same(obj.model_copy(deep=True), obj)
    pickled = pickle.loads(pickle.dumps(obj))
    assert same(pickled, obj) and T.fields_set(pickled) == T.fields_set(obj)
