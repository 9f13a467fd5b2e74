"""No form input gives a 500: random form data posted to every form endpoint of the console.

The endpoints are read from the app's routes, so a new form endpoint is fuzzed without being
listed here. Each example posts a random mix of the fields the console's forms know and random
names, with random text (any Unicode, control characters, very long), as a steward and as the
operator, with the session's valid CSRF token (a forged token is a 403, tested elsewhere).
The supervision endpoints act on one recorded violation (the ledger's). Disputes need the
broker: these accounts' departments have no stored broker password, so the dispute endpoints
refuse once the form has passed (a 400 naming the password), which is the path a console
without the broker's secrets takes.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from govbus.supervise.ledger import Ledger
from govbus.web.app import ROUTES
from govbus.web.forms import FIELD_LABELS
from tests.webconsole import EMPLOYMENT, ConsoleWorld, csrf, make_world, post

FORM_ENDPOINTS = sorted(
    route.path
    for route in ROUTES
    if isinstance(route, Route) and "POST" in (route.methods or ()) and route.path != "/logout"
)
FIELDS = [*FIELD_LABELS, "next", "department", "csrf_token_x"]

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=2001, max_size=2100),
    st.sampled_from(["", " ", "2099-12-31", "2020-01-01", "0:1", "-1", "on", EMPLOYMENT,
                     "administrative-basis", "citizen_id", "不同意", "\x00", "confirmed", "5",
                     "60", "目录已更新完毕"]),
)  # fmt: skip
forms = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=12)),
    st.one_of(texts, st.lists(texts, max_size=3)),
    max_size=8,
)


@pytest.fixture(scope="module")
def world() -> ConsoleWorld:
    state = Path(tempfile.mkdtemp(prefix="govbus-web-fuzz-"))
    return make_world(state / "state")


@pytest.fixture(scope="module")
def clients(world: ConsoleWorld) -> dict[str, TestClient]:
    made = {name: world.client(name) for name in ("mzj-steward", "rsj-approver", "dsjj-operator")}
    # One real request, so the /requests/{id}/... endpoints reach their services.
    response = post(made["mzj-steward"], "/requests", {
        "resource": EMPLOYMENT, "purpose": "administrative-basis", "duty": "复核",
        "until": "2099-12-31",
    })  # fmt: skip
    assert response.status_code == 303
    # One recorded violation (rsj's), so the /supervision/{id}/... endpoints reach the ledger.
    Ledger(world.store, operator=world.settings.share_coordinator).record_other(
        "cz-rsj", "未按规定更新共享目录", world.settings.share_coordinator, world.store.current()
    )
    return made


def test_the_form_endpoints_are_found() -> None:
    assert "/requests" in FORM_ENDPOINTS and "/requests/{id:int}/deny" in FORM_ENDPOINTS
    assert "/disputes/{id:str}/resolve" in FORM_ENDPOINTS and "/login" in FORM_ENDPOINTS
    for action in ("notify", "respond", "close", "escalate"):
        assert f"/supervision/{{id:int}}/{action}" in FORM_ENDPOINTS


@pytest.mark.parametrize("endpoint", FORM_ENDPOINTS)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(form=forms, who=st.sampled_from(["mzj-steward", "rsj-approver", "dsjj-operator"]))
def test_random_form_data_never_gives_a_500(
    clients: dict[str, TestClient], endpoint: str, form: dict[str, object], who: str
) -> None:
    client = clients[who]
    path = re.sub(r"\{id:int\}", "1", endpoint).replace("{id:str}", "0123456789abcdef")
    if endpoint == "/login":
        # Logging in through the fuzzer would hit the rate limit for everyone; a fresh client.
        client = TestClient(client.app, base_url="https://testserver")
    token = csrf(client, "/login" if endpoint == "/login" else "/catalog")
    response = client.post(path, data={**form, "csrf_token": token}, follow_redirects=False)
    assert response.status_code < 500, (path, form, response.text[-1500:])
    if response.status_code == 400:
        assert 'role="alert"' in response.text  # the reason is on the page
