"""Official import path `tinker.types.audit_log_response`, no code of its own.

Aliases `AuditLogEntry`, `AuditLogResponse`.
"""

from tinker.types._billing import AuditLogEntry, AuditLogResponse

__all__ = ["AuditLogEntry", "AuditLogResponse"]
