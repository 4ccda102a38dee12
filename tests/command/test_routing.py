"""Routing rules over every pair of courts: who may ask whom, and where a request goes next."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from zhixing.command.routing import Node, Tree, escalation_target, next_center, refusal
from zhixing.courts.service import load_reference_data


@cache
def tree() -> Tree:
    rows = load_reference_data()
    ids = {r["code"]: i for i, r in enumerate(rows, start=1)}
    nodes = []
    for r in rows:
        parent = r.get("parent_code") or r.get("parent")
        nodes.append(Node(ids[r["code"]], r["code"], r["level"],
                          ids.get(parent) if parent else None, ""))
    by_id = {n.court_id: n for n in nodes}

    def path(n: Node) -> str:
        return (path(by_id[n.parent_id]) if n.parent_id else "/") + n.code + "/"
    return Tree(Node(n.court_id, n.code, n.level, n.parent_id, path(n)) for n in nodes)


CODES = sorted(tree().by_code)
code = st.sampled_from(CODES)


def test_reference_tree_has_three_levels() -> None:
    t = tree()
    assert len(CODES) == 126
    region = t.by_code["桂"]
    assert len(t.children(region)) == 14
    assert {c.code for c in t.children(t.by_code["桂03"])} >= {"桂0305"}


def test_the_zeng_route() -> None:
    t = tree()
    liuzhou, region, guilin, qixing = (t.by_code[c] for c in ("桂02", "桂", "桂03", "桂0305"))
    assert refusal(t, liuzhou, region, qixing) is None  # up
    assert next_center(t, region, qixing) == guilin  # down
    assert next_center(t, guilin, qixing) == qixing
    assert next_center(t, qixing, qixing) is None  # the place's own center acts
    assert refusal(t, liuzhou, guilin, qixing) is None  # across between cities
    assert next_center(t, liuzhou, qixing) == guilin
    liunan = t.by_code["桂0204"]
    assert refusal(t, liunan, qixing, qixing) == "route_not_allowed"  # district to district
    assert refusal(t, liunan, guilin, qixing) == "route_not_allowed"  # district to other city
    assert next_center(t, liunan, qixing) == liuzhou  # a district asks its city
    assert refusal(t, t.by_code["桂01"], guilin, t.by_code["桂0103"]) == "place_outside_receiver"
    assert escalation_target(t, qixing) == guilin
    assert escalation_target(t, region) == region


@settings(max_examples=600, deadline=None)
@given(code, code, code)
def test_who_may_ask_whom(a: str, b: str, p: str) -> None:
    t = tree()
    sender, receiver, place = t.by_code[a], t.by_code[b], t.by_code[p]
    why = refusal(t, sender, receiver, place)
    if a == b:
        assert why == "same_center"
    elif sender.parent_id == receiver.court_id:
        assert why is None
    elif receiver.parent_id == sender.court_id or (
            sender.level == receiver.level == "intermediate"):
        assert (why is None) == receiver.holds(place)
    else:
        assert why == "route_not_allowed"
        # in particular a district never asks anyone but its own city directly
        assert sender.level != "basic" or receiver.court_id != sender.parent_id


@settings(max_examples=400, deadline=None)
@given(code, code)
def test_default_route_reaches_the_place(a: str, p: str) -> None:
    """Following the default next center from anywhere reaches the place's center in at most
    four hops, each hop allowed, and the place's center is the one that acts."""
    t = tree()
    place = t.by_code[p]
    holder = t.by_code[a]
    for _ in range(5):
        step = next_center(t, holder, place)
        if step is None:
            break
        assert refusal(t, holder, step, place) is None
        holder = step
    assert holder == place


@settings(max_examples=200, deadline=None)
@given(code, code)
def test_hand_down_target_is_the_child_holding_the_place(a: str, p: str) -> None:
    t = tree()
    holder, place = t.by_code[a], t.by_code[p]
    child = t.child_towards(holder, place)
    if holder.holds(place) and holder != place:
        assert child is not None and child.parent_id == holder.court_id and child.holds(place)
    else:
        assert child is None
