"""`tinker doctor`: what is installed and where things live, for bug reports and broken installs.

Reports the SDK and Python versions, every installed distribution that provides the import
package `tinker` (two of them is the usual cause of baffling failures), the directories the SDK
and the embedded server use, and which optional libraries are installed. It sends no request,
creates no session and never prints the API key. Exit status 1 when another distribution
provides `tinker`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tinker.cli.context import Context
from tinker.cli.render import property_table, table

__all__ = ["OPTIONAL_LIBRARIES", "add_doctor_command", "doctor", "gather"]

# Distribution name -> what tinker-sync uses it for.
OPTIONAL_LIBRARIES = {
    "torch": "forward_backward_custom with torch losses, TensorData.from_torch",
    "transformers": "tokenizers of Hugging Face models",
    "huggingface-hub": (
        "downloading tokenizers, tinker.local's Hugging Face cache readers, "
        "tinker checkpoint push-hf"
    ),
    "protobuf": "the 0.38 protocol's protobuf bodies",
    "opentelemetry-api": "client metrics through OpenTelemetry",
    "tinker-cookbook": "the cookbook recipes (install with --no-deps, see docs/migration.md)",
}


def add_doctor_command(commands: Any, leaf: argparse.ArgumentParser) -> None:
    doctor_parser = commands.add_parser(
        "doctor", parents=[leaf], help="check the installation (versions, conflicts, directories)"
    )
    doctor_parser.set_defaults(handler=doctor)


def gather() -> dict[str, Any]:
    """Everything the report shows, as plain values (also the JSON output)."""
    import importlib.metadata

    import tinker
    from tinker._distributions import OWN_DISTRIBUTION, claimants, conflict_message
    from tinker.local.hub_cache import hub_cache_dir
    from tinker.local.server.settings import default_data_dir

    found = claimants()
    package_dir = os.path.dirname(os.path.abspath(tinker.__file__ or "tinker"))
    libraries: dict[str, str | None] = {}
    for name in OPTIONAL_LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "tinker_sync_version": tinker.__version__,
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "imported_from": package_dir,
        "distributions": [
            {"name": c.name, "version": c.version, "location": c.location} for c in found
        ],
        "own_distribution_installed": any(
            c.name.lower().replace("_", "-") == OWN_DISTRIBUTION for c in found
        ),
        "conflict": conflict_message(found, package_dir),
        "base_url": os.environ.get("TINKER_BASE_URL") or "(default service)",
        "api_key": "set" if os.environ.get("TINKER_API_KEY") else "not set",
        "local_data_dir": str(default_data_dir()),
        "hugging_face_cache": str(hub_cache_dir()),
        "optional_libraries": libraries,
    }


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    """Print the installation report; 1 when another distribution also provides `tinker`."""
    report = gather()
    status = 1 if report["conflict"] else 0
    if ctx.json:
        ctx.out_json(report)
        return status
    rows = [
        ("tinker-sync", report["tinker_sync_version"]),
        ("Python", report["python"]),
        ("Imported from", report["imported_from"]),
        ("TINKER_BASE_URL", report["base_url"]),
        ("TINKER_API_KEY", report["api_key"]),
        ("Local server data", report["local_data_dir"]),
        ("Hugging Face cache", report["hugging_face_cache"]),
    ]
    ctx.out(property_table("Installation", rows))
    ctx.out("")
    providers = [(d["name"], d["version"], d["location"]) for d in report["distributions"]]
    ctx.out(table("Distributions providing 'tinker'", ("Name", "Version", "Location"), providers))
    ctx.out("")
    libraries = [
        (name, version or "not installed", OPTIONAL_LIBRARIES[name])
        for name, version in report["optional_libraries"].items()
    ]
    ctx.out(table("Optional libraries", ("Name", "Version", "Used for"), libraries))
    if report["conflict"]:
        ctx.out("")
        ctx.out(f"PROBLEM: {report['conflict']}")
    elif not report["own_distribution_installed"]:
        ctx.out("")
        ctx.out("NOTE: tinker-sync runs from a source tree, not an installed distribution.")
    return status
