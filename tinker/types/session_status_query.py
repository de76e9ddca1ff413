"""Official import path `tinker.types.session_status_query`, no code of its own.

Aliases `ActiveSessionStatusQuery`, `CancelledSessionStatusQuery`,
`ClientFinishedSessionStatusQuery`, `ClientSessionFinishReasonType`, `FailedSessionStatusQuery`,
`SessionStatusQuery`.
"""

from tinker.types._sessions import (
    ActiveSessionStatusQuery,
    CancelledSessionStatusQuery,
    ClientFinishedSessionStatusQuery,
    ClientSessionFinishReasonType,
    FailedSessionStatusQuery,
    SessionStatusQuery,
)

__all__ = [
    "ActiveSessionStatusQuery",
    "CancelledSessionStatusQuery",
    "ClientFinishedSessionStatusQuery",
    "ClientSessionFinishReasonType",
    "FailedSessionStatusQuery",
    "SessionStatusQuery",
]
