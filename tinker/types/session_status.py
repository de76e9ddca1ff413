"""Official import path `tinker.types.session_status`, no code of its own.

Aliases `ClientSessionFinishErrored`, `ClientSessionFinishInterrupted`,
`ClientSessionFinishReason`, `ClientSessionFinishSuccess`, `ClientSessionFinished`,
`SessionActive`, `SessionCancelled`, `SessionFailed`, `SessionFailedReason`,
`SessionFailedRequestReason`, `SessionFailedSamplingSessionReason`,
`SessionFailedTrainingRunReason`, `SessionStatus`.
"""

from tinker.types._sessions import (
    ClientSessionFinished,
    ClientSessionFinishErrored,
    ClientSessionFinishInterrupted,
    ClientSessionFinishReason,
    ClientSessionFinishSuccess,
    SessionActive,
    SessionCancelled,
    SessionFailed,
    SessionFailedReason,
    SessionFailedRequestReason,
    SessionFailedSamplingSessionReason,
    SessionFailedTrainingRunReason,
    SessionStatus,
)

__all__ = [
    "ClientSessionFinishErrored",
    "ClientSessionFinishInterrupted",
    "ClientSessionFinishReason",
    "ClientSessionFinishSuccess",
    "ClientSessionFinished",
    "SessionActive",
    "SessionCancelled",
    "SessionFailed",
    "SessionFailedReason",
    "SessionFailedRequestReason",
    "SessionFailedSamplingSessionReason",
    "SessionFailedTrainingRunReason",
    "SessionStatus",
]
