"""Count parameters, nodes and ops of an ONNX model with the onnx library.

    onnx_counts.py MODEL.onnx

Loaded with onnx.load(load_external_data=True). Element count of a tensor = product of its
dims (1 for a scalar). Counting rules, the same for the main graph and every subgraph
(If/Loop/Scan bodies and any GRAPH/GRAPHS attribute, recursively):
  initializer_elements         dense initializers of all graphs
  sparse_initializer_elements  sparse initializers, counted by their stored `values`
                               (non-zeros), not their dense dims ("sparse_count": "values")
  constant_node_elements       Constant nodes: `value` tensor elements, `sparse_value` values,
                               value_float/value_int/value_string 1, value_floats/_ints/_strings len
  parameters                   the sum of the three above
  nodes_top_level / nodes_total   main-graph nodes / nodes of all graphs
  op_histogram                 over all graphs; key "Op" for ai.onnx, "domain::Op" otherwise
Model-local function bodies and training_info graphs are NOT in the counts above; they are
reported separately as "functions" / "function_nodes" and "training_info_graphs".
"""
import argparse
from collections import Counter
from math import prod

import onnx
from onnx import AttributeProto

from _common import run


def elements(tensor):
    return prod(tensor.dims)


def constant_elements(node):
    total = 0
    for attr in node.attribute:
        if attr.name == "value":
            total += elements(attr.t)
        elif attr.name == "sparse_value":
            total += elements(attr.sparse_tensor.values)
        elif attr.name in ("value_float", "value_int", "value_string"):
            total += 1
        elif attr.name in ("value_floats", "value_ints", "value_strings"):
            total += len(attr.floats) + len(attr.ints) + len(attr.strings)
    return total


def subgraphs(node):
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def walk(graph, acc, depth=0):
    acc["initializer_elements"] += sum(elements(t) for t in graph.initializer)
    acc["sparse_initializer_elements"] += sum(elements(s.values) for s in graph.sparse_initializer)
    acc["graphs"] += 1
    for node in graph.node:
        acc["nodes_total"] += 1
        acc["nodes_top_level"] += depth == 0
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        acc["ops"][key] += 1
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            acc["constant_node_elements"] += constant_elements(node)
        for sub in subgraphs(node):
            walk(sub, acc, depth + 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    model = onnx.load(p.parse_args().model, load_external_data=True)
    acc = Counter()
    acc["ops"] = Counter()
    walk(model.graph, acc)
    return {
        "initializer_elements": acc["initializer_elements"],
        "sparse_initializer_elements": acc["sparse_initializer_elements"],
        "sparse_count": "values",
        "constant_node_elements": acc["constant_node_elements"],
        "parameters": acc["initializer_elements"] + acc["sparse_initializer_elements"]
        + acc["constant_node_elements"],
        "nodes_top_level": acc["nodes_top_level"],
        "nodes_total": acc["nodes_total"],
        "graphs": acc["graphs"],
        "op_histogram": dict(sorted(acc["ops"].items())),
        "functions": len(model.functions),
        "function_nodes": sum(len(f.node) for f in model.functions),
        "training_info_graphs": sum(t.HasField("initialization") + t.HasField("algorithm")
                                    for t in model.training_info),
        "ir_version": model.ir_version,
        "opsets": {o.domain: o.version for o in model.opset_import},
    }


if __name__ == "__main__":
    run(main)
