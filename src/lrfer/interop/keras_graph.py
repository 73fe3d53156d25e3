"""A Keras model's wiring: its ``model_config`` JSON parsed into layers in topological order, and
:class:`KerasGraph`, the PyTorch module that runs them.

``Sequential`` models and single-input, single-output functional models (``inbound_nodes``) are
read; shared layers, nested models and the Keras 3 layout are refused with an
:class:`~lrfer.errors.LrferError` that names the layer. What each layer computes is
:mod:`lrfer.interop.keras_layers`; reading the file is :mod:`lrfer.interop.keras_h5`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn

from ..errors import LrferError

#: one layer: (name, Keras class, its config, the names of the layers it reads)
Entry = tuple[str, str, dict, list[str]]


class KerasGraph(nn.Module):
    """The layers of a Keras model and their wiring, run in topological order.

    ``nodes`` is a list of ``(layer name, input layer names)``; the first input of the model is the
    node with no inputs. Modules live in ``self.layers`` under the Keras layer names (with ``.``
    replaced, which ModuleDict keys cannot hold).
    """

    def __init__(self, nodes: list[tuple[str, list[str]]], modules: dict[str, nn.Module], output: str):
        super().__init__()
        self.nodes = nodes
        self.output = output
        self.layers = nn.ModuleDict({_key(n): modules[n] for n, _ in nodes})

    def layer(self, name: str) -> nn.Module:
        """The module of the Keras layer ``name``."""
        return self.layers[_key(name)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[self.output]

    def run(self, x: torch.Tensor, keep: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        """All requested intermediate outputs (NCHW) plus the model output, by Keras layer name."""
        values: dict[str, torch.Tensor] = {}
        # free a tensor once its last consumer has run: peak memory of a chain, not of the graph
        last_use: dict[str, int] = {}
        for i, (_, inputs) in enumerate(self.nodes):
            for src in inputs:
                last_use[src] = i
        wanted = set(keep) | {self.output}
        for i, (name, inputs) in enumerate(self.nodes):
            module = self.layer(name)
            if not inputs:
                out = module(x)
            elif len(inputs) == 1:
                out = module(values[inputs[0]])
            else:
                out = module(*(values[s] for s in inputs))
            values[name] = out
            for src in set(inputs):
                if last_use.get(src) == i and src not in wanted:
                    del values[src]
        return {k: v for k, v in values.items() if k in wanted}


def _key(name: str) -> str:
    return name.replace(".", "_")


def _layer_list(config: dict) -> tuple[str, list[dict]]:
    kind = config.get("class_name")
    inner = config.get("config")
    if kind == "Sequential":
        layers = inner if isinstance(inner, list) else (inner or {}).get("layers")
    elif kind in ("Model", "Functional"):
        layers = (inner or {}).get("layers")
    else:
        raise LrferError(f"the Keras model is a '{kind}'", "only Sequential and functional (Model) Keras models are supported")
    if not isinstance(layers, list) or not layers:
        raise LrferError("the Keras model config lists no layers", "the file's model_config attribute is damaged")
    return kind, layers


def _layer_name(layer: dict) -> str:
    return str(layer.get("name") or layer.get("config", {}).get("name"))


def _inbound(layer: dict) -> list[str]:
    """Input layer names of a functional-API layer (Keras 2: ``[[[name, node, tensor, kwargs], ...]]``)."""
    nodes = layer.get("inbound_nodes") or []
    name = _layer_name(layer)
    if len(nodes) > 1:
        raise LrferError(f"Keras layer '{name}' is called {len(nodes)} times (a shared layer)", "shared layers are not supported")
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3 layout: {"args": [...], "kwargs": {...}}
        raise LrferError(f"Keras layer '{name}' is stored in the Keras 3 format", "save the model with Keras 2 (tf.keras <= 2.15) as .h5")
    sources = []
    for entry in node:
        if not isinstance(entry, list) or not entry:
            raise LrferError(f"Keras layer '{name}' has an unreadable inbound node {entry!r}", "the model_config is damaged or of an unknown Keras version")
        if len(entry) > 1 and entry[1] != 0:
            raise LrferError(f"Keras layer '{name}' reads output {entry[1]} of '{entry[0]}' (a shared layer)", "shared layers are not supported")
        sources.append(str(entry[0]))
    return sources


def parse_graph(config: dict) -> tuple[list[Entry], str, Optional[list]]:
    """The layers in topological order, the output layer name, and the declared ``batch_input_shape``.

    A functional model keeps only what its output depends on (e.g. not an auxiliary branch).
    """
    kind, layers = _layer_list(config)
    input_shape = None
    for layer in layers:
        cfg = layer.get("config") or {}
        if input_shape is None and cfg.get("batch_input_shape") is not None:
            input_shape = cfg["batch_input_shape"]
    if kind == "Sequential":
        entries: list[Entry] = []
        prev: Optional[str] = None
        for layer in layers:
            name = _layer_name(layer)
            entries.append((name, str(layer.get("class_name")), layer.get("config") or {}, [] if prev is None else [prev]))
            prev = name
        return entries, entries[-1][0], input_shape
    inner = config["config"]
    ins = inner.get("input_layers") or []
    outs = inner.get("output_layers") or []
    ins = [ins] if ins and isinstance(ins[0], str) else ins
    outs = [outs] if outs and isinstance(outs[0], str) else outs
    if len(ins) != 1 or len(outs) != 1:
        raise LrferError(f"the Keras model has {len(ins)} inputs and {len(outs)} outputs", "only single-input, single-output models are supported")
    by_name = {_layer_name(layer): layer for layer in layers}
    entries = []
    for n in _topological_order(by_name):
        layer = by_name[n]
        inputs = _inbound(layer)
        if not inputs and n != ins[0][0]:
            raise LrferError(f"Keras layer '{n}' has no input and is not the model input", "only single-input models are supported")
        entries.append((n, str(layer.get("class_name")), layer.get("config") or {}, inputs))
    needed = {outs[0][0]}
    for n, _, _, inputs in reversed(entries):
        if n in needed:
            needed.update(inputs)
    return [e for e in entries if e[0] in needed], outs[0][0], input_shape


def _topological_order(by_name: dict[str, dict]) -> list[str]:
    """Layer names, each after the layers it reads (Kahn's algorithm).

    Keras stores layers in creation order, which is topological already; sorting anyway turns a
    damaged config (a dangling input, a cycle) into an error instead of a wrong graph.
    """
    for name, layer in by_name.items():
        for src in _inbound(layer):
            if src not in by_name:
                raise LrferError(f"Keras layer '{name}' reads '{src}', which is not in the model", "the model_config is damaged")
    order: list[str] = []
    done: set[str] = set()
    pending = list(by_name)
    while pending:
        ready = [n for n in pending if all(s in done for s in _inbound(by_name[n]))]
        if not ready:
            raise LrferError("the Keras model graph has a cycle", "the model_config is damaged")
        order += ready
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order
