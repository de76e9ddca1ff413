"""Test doubles shared by the suites (on the path through `pythonpath = tests`)."""
