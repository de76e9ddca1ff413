"""The 0.38 REST reports, from the data directory: billing usage (token counts at zero cost),
current checkpoint storage, the audit log and session search (the 0.38 REST routes).

Their answer types are not in `tinker.types` yet, so the bodies are plain dicts with the
protocol's field names. The local server has one user in one organization; sessions without a
project are in DEFAULT_PROJECT.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from tinker.local.server.accounting import HOUR
from tinker.local.server.http_errors import BadRequest
from tinker.local.server.store import SessionRow, Store, now
from tinker.local.server.tokens import SUBJECT
from tinker.types import SessionSearchRequest, SessionStatusQuery, UserSearchOwner

DEFAULT_PROJECT = "default"
USER_NAME = "local"
MAX_BILLING_WINDOW = dt.timedelta(days=14)
AUDIT_CATEGORIES = ("checkpoints", "projects", "teams", "organizations")
_RATE: float = 0.0  # what a token or a gigabyte-month costs here


def utc(timestamp: float) -> str:
    """A Unix time as an RFC 3339 UTC datetime."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(name: str, text: str | None) -> dt.datetime:
    """An RFC 3339 query value (a trailing Z is UTC); BadRequest naming the parameter."""
    if not text:
        raise BadRequest(f"Query parameter {name!r} is required (an RFC 3339 datetime).")
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        message = f"Query parameter {name!r} is not an RFC 3339 datetime: {text[:40]!r}."
        raise BadRequest(message) from None
    if value.tzinfo is None:
        raise BadRequest(f"Query parameter {name!r} needs a time zone offset (e.g. Z).")
    return value


def billing_usage(
    store: Store, starting_on: dt.datetime, ending_before: dt.datetime
) -> dict[str, Any]:
    """Hourly usage events in [starting_on, ending_before): one per session, base model and
    kind, ordered by bucket, then token count (largest first)."""
    for name, value in (("starting_on", starting_on), ("ending_before", ending_before)):
        if (value.minute, value.second, value.microsecond) != (0, 0, 0):
            raise BadRequest(f"{name} must be on a full hour, got {value.isoformat()}.")
    if not starting_on < ending_before:
        raise BadRequest("starting_on must be before ending_before.")
    if ending_before - starting_on > MAX_BILLING_WINDOW:
        raise BadRequest("The window from starting_on to ending_before is at most 14 days.")
    if starting_on.timestamp() > now():
        raise BadRequest("starting_on must not be in the future.")
    projects = {row.session_id: row for row in store.all_sessions()}
    events: list[dict[str, Any]] = []
    for usage in store.usage_between(starting_on.timestamp(), ending_before.timestamp()):
        session = projects.get(usage.session_id)
        info: dict[str, Any] = {"type": usage.kind}
        if usage.kind == "checkpoint":
            info["count"] = usage.amount
        else:
            info["token_count"] = usage.amount
        if usage.kind == "sampling_prefill":
            info["cached"] = usage.cached
        events.append(
            {
                "bucket_start": utc(usage.bucket_start),
                "bucket_end": utc(usage.bucket_start + HOUR),
                "base_model": usage.base_model,
                "user_id": SUBJECT,
                "user_name": USER_NAME,
                "session_id": usage.session_id,
                "project_id": _project(session),
                "estimated_cost_usd": 0.0,
                "effective_rate_usd_per_million_tokens": _RATE,
                "effective_rate_usd_per_gigabyte_month": None,
                "event_info": info,
            }
        )
    events.sort(key=lambda e: (e["bucket_start"], -e["event_info"].get("token_count", 0)))
    sessions = {
        e["session_id"]: {"user_metadata": _metadata(projects.get(e["session_id"]))} for e in events
    }
    return {"data": events, "sessions": sessions, "cost_data_through": utc(now())}


def storage_usage(store: Store, project_id: str | None) -> dict[str, Any]:
    """Checkpoints and their bytes per project (one owner: the local user), at zero cost."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, project, count, size in store.checkpoint_totals():
        total = totals[project or DEFAULT_PROJECT]
        total[0] += count
        total[1] += size
    data = [
        {
            "project_id": project,
            "org_user_urn": SUBJECT,
            "user_email": None,
            "user_name": USER_NAME,
            "checkpoint_count": count,
            "size_bytes": size,
            "size_gigabytes": size / 1e9,
            "estimated_monthly_cost_usd": 0.0,
        }
        for project, (count, size) in sorted(totals.items())
        if project_id is None or project == project_id
    ]
    return {"effective_rate_usd_per_gigabyte_month": _RATE, "data": data}


def audit_log(store: Store, event_type: str, day: str | None) -> dict[str, Any]:
    """The audit log of one category ("all" for every one), of one UTC day if given."""
    if event_type != "all" and event_type not in AUDIT_CATEGORIES:
        raise BadRequest(
            f"event_type must be all or one of {', '.join(AUDIT_CATEGORIES)}, got {event_type!r}."
        )
    start, end = 0.0, float("inf")
    if day:
        try:
            first = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.timezone.utc)
        except ValueError:
            raise BadRequest(f"day must be an ISO date (YYYY-MM-DD), got {day[:40]!r}.") from None
        start, end = first.timestamp(), (first + dt.timedelta(days=1)).timestamp()
    rows = store.audit_between(start, end, None if event_type == "all" else event_type)
    entries = []
    for row in rows:
        entry: dict[str, Any] = {
            "timestamp": utc(row.timestamp),
            "event": row.event,
            "event_details": row.details,
        }
        for key in ("model_id", "tinker_path"):
            if key in row.details:
                entry[key] = row.details[key]
        entries.append(entry)
    return {"entries": entries}


def assign_project(store: Store, session_id: str, project_id: str) -> bool:
    """Move a session (and so its runs and samplers) to a project; False if unknown."""
    if not project_id:
        raise BadRequest("project_id must not be empty (a session cannot leave its project).")
    return store.set_session_project(session_id, project_id)


def search_sessions(store: Store, search: SessionSearchRequest) -> dict[str, Any]:
    """The sessions matching every given criterion, newest first, one page at a time."""
    checkpoints = {sid: (count, size) for sid, _, count, size in store.checkpoint_totals()}
    found = [row for row in store.all_sessions() if _matches(row, search)]
    if search.cursor is not None:
        last = (search.cursor.last_created_at.timestamp(), search.cursor.last_session_id)
        found = [row for row in found if _order(row) > _order_key(*last)]
    page = found[: search.limit]
    summaries = [_summary(row, checkpoints.get(row.session_id, (0, 0))) for row in page]
    next_cursor = None
    if len(found) > search.limit:
        last_row = page[-1]
        next_cursor = {
            "last_created_at": utc(last_row.created_at),
            "last_session_id": last_row.session_id,
        }
    return {"sessions": summaries, "next_cursor": next_cursor}


def _order(row: SessionRow) -> tuple[float, str]:
    return _order_key(row.created_at, row.session_id)


def _order_key(created_at: float, session_id: str) -> tuple[float, str]:
    """Newest first, then by id: the key grows along the listing. Times count in whole
    microseconds, as the cursor carries them."""
    seconds = dt.datetime.fromtimestamp(created_at, dt.timezone.utc).timestamp()
    return (-seconds, session_id)


def _matches(row: SessionRow, search: SessionSearchRequest) -> bool:
    names = [search.session_id, search.display_name]
    if any(name is not None for name in names):
        by_id = search.session_id is not None and row.session_id == search.session_id
        by_name = search.display_name is not None and _name_matches(row, search.display_name)
        if not (by_id or by_name):
            return False
    if search.project_ids is not None and _project(row) not in search.project_ids:
        return False
    metadata = row.user_metadata or {}
    if any(str(metadata.get(key)) != value for key, value in search.user_metadata.items()):
        return False
    owner = search.owner
    if isinstance(owner, UserSearchOwner) and SUBJECT not in owner.owner_urns:
        return False
    if search.statuses is not None:
        status = status_of(row)
        return any(_status_matches(status, wanted) for wanted in search.statuses)
    return True


def _name_matches(row: SessionRow, display_name: str) -> bool:
    name = (row.display_name or "").lower()
    return all(word in name for word in display_name.lower().split())


def _status_matches(status: Mapping[str, Any], wanted: SessionStatusQuery) -> bool:
    if status["type"] != wanted.type:
        return False
    reasons = getattr(wanted, "reasons", None)
    return reasons is None or status["reason"]["type"] in reasons


def status_of(row: SessionRow) -> dict[str, Any]:
    """A session's SessionStatus: active, client_finished (its reason), or cancelled when it
    expired without heartbeats."""
    if row.finished_at is not None:
        return {
            "type": "client_finished",
            "reason": {"type": row.finish_reason},
            "detail": row.finish_detail,
        }
    if row.expired_at is not None:
        return {"type": "cancelled", "detail": "The session expired without heartbeats."}
    return {"type": "active"}


def _summary(row: SessionRow, checkpoints: tuple[int, int]) -> dict[str, Any]:
    return {
        "session_id": row.session_id,
        "created_at": utc(row.created_at),
        "owner": SUBJECT,
        "project_id": _project(row),
        "status": status_of(row),
        "checkpoints_count": checkpoints[0],
        "display_name": row.display_name,
        "user_metadata": _metadata(row),
        "checkpoint_storage_bytes": checkpoints[1],
    }


def _project(row: SessionRow | None) -> str:
    return DEFAULT_PROJECT if row is None or row.project_id is None else row.project_id


def _metadata(row: SessionRow | None) -> dict[str, Any] | None:
    return None if row is None else row.user_metadata
