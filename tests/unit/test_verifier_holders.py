"""The verifier takes an observation's holder from the topic it came on (issue 11): each holder
department writes only its own ``verify.by.<id>`` (its ACL), so what the record says cannot
make it another holder. No broker: the worker's decoding step alone."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from govbus.vocabulary.naming import Naming
from govbus.vocabulary.spec import CatalogSpec, Holder, InfoItem
from stream_apps.registry import AppContext
from stream_apps.verification.app import _Worker, needs
from tests.factories import person_resource
from tests.integration.fixtures import Namespace

NS = Namespace("v")
GAJ, MZJ, RSJ = NS.department("gaj", 1), NS.department("mzj", 2), NS.department("rsj", 3)
RESOURCE = person_resource(
    (InfoItem("公民身份号码", "citizen_id", "C", 18, required=True),
     InfoItem("姓名", "name", "C", 50, compare="text")),
    code=f"10101/{GAJ.code}-000001", provider=GAJ.code,
    holders=(Holder(MZJ.code, ("name",)), Holder(RSJ.code, ("name",))),
)  # fmt: skip
SPEC = CatalogSpec((GAJ, MZJ, RSJ), (RESOURCE,))
NAMING = Naming("x.")
KEY = "320402199001010011"


def worker() -> _Worker:
    routes = {NAMING.holder_observation_topic(d.id): ("obs", d.code) for d in (MZJ, RSJ)}
    return _Worker(SPEC, routes, None, None, lambda: dt.datetime.now(dt.UTC), AppContext(NAMING))


def value(**fields: object) -> bytes:
    return json.dumps(
        {"resource_code": RESOURCE.code, "values": {"name": "张三"}, **fields}
    ).encode()


def test_each_holder_department_gets_one_topic_that_only_it_writes() -> None:
    app = needs(SPEC, AppContext(NAMING))
    topics = [NAMING.holder_observation_topic(d.id) for d in (MZJ, RSJ)]
    assert set(topics) <= set(app.topics) and set(topics) <= set(app.reads)
    writers = {(a.resource_name, a.principal) for a in app.acls if a.operation.name == "WRITE"}
    assert writers == {(topics[0], f"User:{MZJ.id}"), (topics[1], f"User:{RSJ.id}")}


def test_the_holder_is_the_topics_department_whatever_the_record_says() -> None:
    w = worker()
    assert w._observation(MZJ.code, KEY, value()).holder == MZJ.code
    assert w._observation(MZJ.code, KEY, value(holder=MZJ.code)).holder == MZJ.code
    with pytest.raises(ValueError, match=f"says holder {RSJ.code} but was written to the topic"):
        w._observation(MZJ.code, KEY, value(holder=RSJ.code))
    with pytest.raises(ValueError, match="not a verified resource"):
        w._observation(MZJ.code, KEY, value(resource_code="10101/other-000001"))
