import pickle

import pytest

from tinker import errors
from tinker.errors import RequestErrorCategory


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (503, errors.InternalServerError),
        (302, errors.APIStatusError),
        (408, errors.APIStatusError),
        (410, errors.APIStatusError),
    ],
)
def test_status_error_picks_class_and_message(status: int, cls: type) -> None:
    exc = errors.status_error(status, {"detail": "nope"})
    assert type(exc) is cls
    assert exc.status_code == status
    assert str(exc) == f"Error code: {status} - {{'detail': 'nope'}}"
    assert exc.body == {"detail": "nope"}


def test_status_error_without_body() -> None:
    assert str(errors.status_error(404, None)) == "Error code: 404"
    assert str(errors.status_error(404, "")) == "Error code: 404"
    assert str(errors.status_error(500, "oops")) == "Error code: 500 - oops"


def test_hierarchy_matches_official_bases() -> None:
    assert issubclass(errors.APIError, errors.TinkerError)
    assert issubclass(errors.APIStatusError, errors.APIError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    assert issubclass(errors.APIConnectionError, errors.APIError)
    assert issubclass(errors.APIResponseValidationError, errors.APIError)
    assert issubclass(errors.RequestFailedError, errors.TinkerError)
    assert not issubclass(errors.RequestFailedError, errors.APIError)


def test_default_messages() -> None:
    assert str(errors.APIConnectionError()) == "Connection error."
    assert str(errors.APITimeoutError()) == "Request timed out."


EXAMPLES = [
    errors.TinkerError("no key"),
    errors.status_error(404, {"detail": "missing"}, response=object(), request=object()),
    errors.status_error(503, "down"),
    errors.APIConnectionError(request=object()),
    errors.APITimeoutError(),
    errors.APIResponseValidationError("bad body", status_code=200, body={"x": 1}),
    errors.RequestFailedError(
        "Request failed: boom", request_id="S:train:0:3", category=RequestErrorCategory.User
    ),
]


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_fields(exc: errors.TinkerError) -> None:
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert str(clone) == str(exc)
    assert clone.args == exc.args
    for key, value in vars(exc).items():
        if key in ("request", "response"):
            assert getattr(clone, key) is None
        else:
            assert getattr(clone, key) == value


def test_request_failed_error_fields() -> None:
    exc = errors.RequestFailedError("m", request_id="r1", category=RequestErrorCategory.Server)
    clone = pickle.loads(pickle.dumps(exc))
    assert clone.request_id == "r1"
    assert clone.category is RequestErrorCategory.Server


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user", RequestErrorCategory.User),
        ("USER", RequestErrorCategory.User),
        ("server", RequestErrorCategory.Server),
        ("unknown", RequestErrorCategory.Unknown),
        ("weird", RequestErrorCategory.Unknown),
        (None, RequestErrorCategory.Unknown),
        (3, RequestErrorCategory.Unknown),
    ],
)
def test_category_parse(raw: object, expected: RequestErrorCategory) -> None:
    assert RequestErrorCategory.parse(raw) is expected


def test_category_is_a_string() -> None:
    assert RequestErrorCategory.User == "user"
    assert str(RequestErrorCategory.Server) == "server"
