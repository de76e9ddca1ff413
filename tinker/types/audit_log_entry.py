"""Official import path `tinker.types.audit_log_entry`, no code of its own.

Aliases `AuditLogEntry`.
"""

from tinker.types._billing import AuditLogEntry

__all__ = ["AuditLogEntry"]
