"""List filters and fast paging on crm.activity.list (docs/bitrix24-protocol.md §3.5).

These are what the official clients page with: b24jssdk's `callList` and b24pysdk's `as_list_fast()` send
`filter[>ID]=<last id>`, `order[ID]=ASC` and `start=-1`, and stop at a short page.
"""
from __future__ import annotations

from typing import Any

import pytest

from b24app.sandbox import Sandbox

from .conftest import Installed, call

LAYOUT = {"icon": {"code": "info"}, "header": {"title": "Missed call"},
          "body": {"logo": {"code": "call"}, "blocks": {"t1": {"type": "text", "properties": {"value": "x"}}}}}
COUNT = 66


@pytest.fixture(autouse=True)
def unlimited(sb: Sandbox, installed: Installed) -> None:
    """Making 66 activities would meet the 50-request burst (§4.1): not what these tests are about."""
    sb.set_rate(installed.portal, None)


def make(http, inst: Installed, count: int = COUNT) -> list[int]:
    """`count` configurable activities on deal 1, every third one completed; their ids in order."""
    token = inst.admin["access_token"]
    ids = []
    for index in range(count):
        body = call(http, inst.portal, "crm.activity.configurable.add", token, ownerTypeId=2, ownerId=1,
                    fields={"completed": index % 3 == 0}, layout=LAYOUT).json()
        ids.append(body["result"]["activity"]["id"])
    return ids


def listed(http, inst: Installed, **params: Any) -> dict[str, Any]:
    resp = call(http, inst.portal, "crm.activity.list", inst.admin["access_token"], **params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids_of(body: dict[str, Any]) -> list[int]:
    return [int(row["ID"]) for row in body["result"]]


@pytest.mark.parametrize(("prefix", "pick"), [
    (">", lambda ids, pivot: [i for i in ids if i > pivot]),
    (">=", lambda ids, pivot: [i for i in ids if i >= pivot]),
    ("<", lambda ids, pivot: [i for i in ids if i < pivot]),
    ("<=", lambda ids, pivot: [i for i in ids if i <= pivot]),
    ("!", lambda ids, pivot: [i for i in ids if i != pivot]),
    ("!=", lambda ids, pivot: [i for i in ids if i != pivot]),
    ("=", lambda ids, pivot: [pivot]),
])
def test_comparison_prefixes_on_id(http, installed: Installed, prefix: str, pick) -> None:
    """§3.5: `>`, `>=`, `<`, `<=`, `!`/`!=` and `=` compare IDs as numbers (10 > 9)."""
    ids = make(http, installed, 12)
    pivot = ids[9]
    body = listed(http, installed, filter={f"{prefix}ID": pivot})
    assert ids_of(body) == pick(ids, pivot)
    assert body["total"] == len(pick(ids, pivot))


def test_in_not_equal_and_like_prefixes(http, installed: Installed) -> None:
    """§3.5: `@` IN, `!@` NOT IN, `%` contains (case-insensitive), `!%` does not contain, `=%` LIKE pattern,
    `!` on COMPLETED."""
    ids = make(http, installed, 6)
    assert ids_of(listed(http, installed, filter={"@ID": ids[:2]})) == ids[:2]
    assert ids_of(listed(http, installed, filter={"!@ID": ids[:2]})) == ids[2:]
    assert ids_of(listed(http, installed, filter={"%SUBJECT": "MISSED"})) == ids
    assert ids_of(listed(http, installed, filter={"!%SUBJECT": "missed"})) == []
    assert ids_of(listed(http, installed, filter={"=%SUBJECT": "Missed%"})) == ids
    assert ids_of(listed(http, installed, filter={"=%SUBJECT": "call%"})) == []
    assert ids_of(listed(http, installed, filter={"!COMPLETED": "Y"})) == [i for n, i in enumerate(ids) if n % 3]


def test_start_minus_one_answers_without_counting(http, installed: Installed) -> None:
    """§3.5: `start=-1` -> the first 50 rows, `total: 0` and no `next` (the docs' large-data page)."""
    make(http, installed)
    body = listed(http, installed, order={"ID": "ASC"}, start=-1)
    assert len(body["result"]) == 50
    assert body["total"] == 0
    assert "next" not in body
    counted = listed(http, installed)
    assert (counted["total"], counted["next"]) == (COUNT, 50)


def test_id_cursor_walks_every_row_once(http, installed: Installed) -> None:
    """§3.5: what b24jssdk's callList does: `>ID` cursor, order ID ASC, start=-1, stop at a short page."""
    ids = make(http, installed)
    seen: list[int] = []
    cursor = 0
    for _ in range(5):
        page = ids_of(listed(http, installed, filter={">ID": cursor}, order={"ID": "ASC"}, start=-1))
        seen += page
        if len(page) < 50:
            break
        cursor = page[-1]
    assert seen == ids


def test_descending_cursor_in_one_batch(http, installed: Installed) -> None:
    """§3.4/§3.5: what b24pysdk's `as_list_fast(descending=True)` sends: one batch whose commands each take
    `filter[<ID]=$result[req_N-1][49][ID]`; every row arrives once, newest first."""
    ids = make(http, installed)
    cmd = {"req_0": "crm.activity.list?order[ID]=DESC&start=-1"}
    for n in range(1, 4):
        cmd[f"req_{n}"] = f"crm.activity.list?order[ID]=DESC&start=-1&filter[<ID]=$result[req_{n - 1}][49][ID]"
    inner = call(http, installed.portal, "batch", installed.admin["access_token"], cmd=cmd,
                 halt=1).json()["result"]
    rows: list[int] = []
    for key in cmd:
        page = [int(r["ID"]) for r in inner["result"][key]]
        rows += page
        if len(page) < 50:
            break
    assert rows == sorted(ids, reverse=True)
    assert inner["result_total"]["req_0"] == 0


def test_order_and_select(http, installed: Installed) -> None:
    """§3.5: `order` sorts, `select` keeps ID and the named fields; `*` keeps all the standard ones."""
    ids = make(http, installed, 3)
    body = listed(http, installed, order={"ID": "DESC"}, select=["SUBJECT"])
    assert ids_of(body) == ids[::-1]
    assert set(body["result"][0]) == {"ID", "SUBJECT"}
    assert "COMMUNICATIONS" not in listed(http, installed, select=["*"])["result"][0]
    assert "COMMUNICATIONS" in listed(http, installed, select=["*", "COMMUNICATIONS"])["result"][0]
