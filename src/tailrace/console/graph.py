"""The pipeline graph as server-drawn SVG, in layers from left to right.

Edges follow the flow of data and control: a data node feeds the activity that reads it
(input), an activity writes its output, a dependency comes before its dependent, a precondition
before what it guards, a resource before what runs on it. Layers are longest paths over those
edges (back edges of a cycle are drawn but not followed); within a layer, nodes are ordered by
the mean position of their neighbours (a few sweeps both ways), which keeps crossings low and
stays readable with dozens of objects. Schedules have no arrows (every object names one): they
sit in the first column. Each node links to `?object=ID`, where the page shows its fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from tailrace.console.html import Markup, fmt, join

# field -> (edge runs from the referencing object (False) or towards it (True))
EDGE_FIELDS: dict[str, bool] = {
    "input": True,  # data node -> activity
    "output": False,  # activity -> data node
    "dependsOn": True,  # dependency -> dependent
    "precondition": True,  # precondition -> guarded object
    "runsOn": True,  # resource -> activity
}
SHOWN = ("activity", "datanode", "precondition", "resource", "schedule", "action")
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 176, 38, 84, 16, 20
LABEL_CHARS = 22


@dataclass(frozen=True, kw_only=True)
class Node:
    id: str
    name: str
    type: str
    category: str


@dataclass(frozen=True, kw_only=True)
class Edge:
    source: str
    target: str
    field: str


def kind(category: str | None, type_name: str | None) -> str:
    c = (category or "").lower().replace("_", "").replace(" ", "")
    if c in SHOWN:
        return c
    if (type_name or "") == "Schedule":
        return "schedule"
    return "other"


def edges_of(nodes: Sequence[Node], refs: Sequence[tuple[str, str, str]]) -> list[Edge]:
    """Flow edges from (object, field, referenced id) triples; other fields are not drawn."""
    shown = {n.id for n in nodes}
    out: list[Edge] = []
    for obj, key, target in refs:
        towards = EDGE_FIELDS.get(key)
        if towards is None or obj not in shown or target not in shown or obj == target:
            continue
        out.append(
            Edge(source=target, target=obj, field=key)
            if towards
            else Edge(source=obj, target=target, field=key)
        )
    return out


def layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> dict[str, tuple[int, int]]:
    """(column, row) of every node."""
    ids = [n.id for n in nodes]
    succ: dict[str, list[str]] = {i: [] for i in ids}
    pred: dict[str, list[str]] = {i: [] for i in ids}
    for e in edges:
        succ[e.source].append(e.target)
        pred[e.target].append(e.source)
    # Longest path from the sources, iteratively (depth-first with a colour per node so that
    # a cycle's back edge is skipped).
    layer: dict[str, int] = {}
    state: dict[str, int] = {}

    def visit(root: str) -> None:
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
            parents = pred[node]
            if i < len(parents):
                stack.append((node, i + 1))
                p = parents[i]
                if state.get(p, 0) == 0:
                    stack.append((p, 0))
                continue
            layer[node] = max((layer[p] + 1 for p in parents if p in layer), default=0)
            state[node] = 2

    for i in ids:
        if state.get(i, 0) == 0:
            visit(i)
    columns: dict[int, list[str]] = {}
    for i in ids:
        columns.setdefault(layer[i], []).append(i)
    order = {i: n for n, i in enumerate(ids)}
    for _ in range(4):  # barycentre sweeps, left to right then right to left
        for sweep, neighbours in ((sorted(columns), pred), (sorted(columns, reverse=True), succ)):
            for col in sweep:
                members = columns[col]

                def centre(node: str, nb: Mapping[str, list[str]] = neighbours) -> float:
                    near = [order[m] for m in nb[node]]
                    return sum(near) / len(near) if near else order[node]

                members.sort(key=centre)
                for row, node in enumerate(members):
                    order[node] = row
    return {node: (col, row) for col, members in columns.items() for row, node in enumerate(members)}


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def render(
    nodes: Sequence[Node],
    edges: Sequence[Edge],
    *,
    selected: str | None = None,
    link_params: Mapping[str, str] | None = None,
) -> Markup:
    if not nodes:
        return Markup('<p class="empty">This pipeline has no definition yet.</p>')
    pos = layout(nodes, edges)
    cols = max(c for c, _ in pos.values()) + 1
    rows = max(r for _, r in pos.values()) + 1
    width = PAD * 2 + cols * NODE_W + (cols - 1) * COL_GAP
    height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP

    def xy(node: str) -> tuple[int, int]:
        c, r = pos[node]
        return PAD + c * (NODE_W + COL_GAP), PAD + r * (NODE_H + ROW_GAP)

    lines = []
    for e in edges:
        (x1, y1), (x2, y2) = xy(e.source), xy(e.target)
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
        if tx <= sx:  # a back edge (a cycle): loop around below
            path = f"M{sx},{sy} C{sx + 60},{sy + 90} {tx - 60},{ty + 90} {tx},{ty}"
        else:
            mid = (sx + tx) // 2
            path = f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}"
        lines.append(
            fmt(
                '<path class="edge e-{f}" d="{d}" marker-end="url(#arrow)"><title>{s} {f} {t}</title></path>',
                f=e.field,
                d=path,
                s=e.source,
                t=e.target,
            )
        )
    boxes = []
    base = dict(link_params or {})
    for n in nodes:
        x, y = xy(n.id)
        href = "?" + urlencode({**base, "object": n.id}) + "#pane"
        boxes.append(
            fmt(
                '<a href="{href}" class="node k-{k}{sel}" data-id="{id}">'
                '<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6"></rect>'
                '<text x="{tx}" y="{ty}">{label}</text>'
                '<text class="type" x="{tx}" y="{ty2}">{type}</text>'
                "<title>{id} ({type})</title></a>",
                href=href,
                k=kind(n.category, n.type),
                sel=" selected" if n.id == selected else "",
                id=n.id,
                x=x,
                y=y,
                w=NODE_W,
                h=NODE_H,
                tx=x + 8,
                ty=y + 16,
                ty2=y + 31,
                label=_label(n.name or n.id),
                type=n.type or "",
            )
        )
    return fmt(
        '<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'role="img" aria-label="pipeline graph">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"></path></marker></defs>'
        "{lines}{boxes}</svg>",
        w=width,
        h=height,
        lines=join(lines),
        boxes=join(boxes),
    )
