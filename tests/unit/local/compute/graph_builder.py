"""Builds custom-loss graphs in the JSON encoding of create_custom_loss, as a tracer would."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    """A reference to an earlier node."""
    return {"ref": name}


class GraphBuilder:
    """Appends nodes in execution order; `graph()` returns the upload body's three fields."""

    def __init__(self, **inputs: int) -> None:
        self.inputs = [{"name": name, "rank": rank} for name, rank in inputs.items()]
        self.nodes: list[dict[str, Any]] = [
            {"op": "placeholder", "name": name, "target": name, "args": [], "kwargs": {}}
            for name in inputs
        ]

    def fn(self, name: str, target: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        """A call_function node; returns a reference to it."""
        return self._add("call_function", name, target, args, kwargs)

    def method(self, name: str, target: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        """A call_method node (args[0] is the tensor); returns a reference to it."""
        return self._add("call_method", name, target, args, kwargs)

    def _add(
        self, op: str, name: str, target: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, str]:
        self.nodes.append(
            {"op": op, "name": name, "target": target, "args": list(args), "kwargs": kwargs}
        )
        return ref(name)

    def graph(self, loss: Any, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """{"name", "inputs", "graph"} with the output node (loss, metrics) appended."""
        output = {"tuple": [loss, {"dict": metrics or {}}]}
        nodes = [
            *self.nodes,
            {"op": "output", "name": "output", "target": "output", "args": [output], "kwargs": {}},
        ]
        return {"name": "loss", "inputs": self.inputs, "graph": {"format": 1, "nodes": nodes}}
