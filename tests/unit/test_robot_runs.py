"""Reading a robot run from the handler's form (badges/robots.py; docs/bitrix24-protocol.md §11.3)."""
from __future__ import annotations

import pytest

from b24app.badges.robots import RobotRun
from b24app.errors import InvalidInput
from b24app.portals.frames import unflatten

FORM = {
    "workflow_id": "664fa13bbbb410.99176768", "code": "activity_badge",
    "document_id[0]": "crm", "document_id[1]": "CCrmDocumentDeal", "document_id[2]": "DEAL_123",
    "document_type[0]": "crm", "document_type[1]": "CCrmDocumentDeal", "document_type[2]": "DEAL",
    "event_token": "664fa13bbbb410.99176768|A40364_79843|MS1ekdI0.54020ce2", "properties[badge]": "missedCall",
    "properties[action]": "set", "use_subscription": "Y", "timeout_duration": "0", "ts": "1716298303",
    "auth[access_token]": "at", "auth[member_id]": "m1", "auth[user_id]": "7", "auth[application_token]": "apptok",
    "auth[domain]": "portal.example.com",
}


def test_a_deal_run_is_read_with_its_properties() -> None:
    run = RobotRun.parse(unflatten(FORM))
    assert (run.member_id, run.deal_id, run.robot, run.waits, run.user_id) == ("m1", 123, "activity_badge", True, 7)
    assert dict(run.properties) == {"badge": "missedCall", "action": "set"}
    assert len(run.digest) == 64


@pytest.mark.parametrize("document", [["crm", "CCrmDocumentLead", "LEAD_5"], ["crm", "CCrmDocumentDeal", "DEAL_x"],
                                      ["crm", "CCrmDocumentDeal", "DEAL_0"], ["crm", "CCrmDocumentDeal"],
                                      ["crm", "CCrmDocumentDeal", "DEAL_１２"]])
def test_anything_but_a_deal_has_no_deal_id(document: list[str]) -> None:
    form = {k: v for k, v in FORM.items() if not k.startswith("document_id")}
    form.update({f"document_id[{i}]": part for i, part in enumerate(document)})
    assert RobotRun.parse(unflatten(form)).deal_id is None


@pytest.mark.parametrize("missing", ["workflow_id", "event_token", "auth[access_token]", "code"])
def test_a_run_without_its_essentials_is_refused_naming_them(missing: str) -> None:
    form = {k: v for k, v in FORM.items() if k != missing}
    with pytest.raises(InvalidInput) as refused:
        RobotRun.parse(unflatten(form))
    assert len(refused.value.fields) == 1


def test_tokens_stay_out_of_the_runs_repr() -> None:
    shown = repr(RobotRun.parse(unflatten(FORM)))
    assert "apptok" not in shown and "'at'" not in shown
