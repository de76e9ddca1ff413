"""Errors raised by the local compute backend for bad client input (mapped to HTTP 400)."""

from __future__ import annotations


class UserInputError(ValueError):
    """The request is invalid: the failure belongs to the caller, not to the server."""


class UnknownModelError(UserInputError):
    """The requested base model is not one of the local models."""
