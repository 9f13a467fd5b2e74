"""Federation between platforms (articles 8 and 13): agreements, replication, the cascade.

- ``agreements``: offers and acceptances as data, opt-in on both sides, revocable by either;
- ``needs``: the users and ACLs active agreements need on each cluster (pure; the reconciler
  adds them to its desired state);
- ``mm2``: a flow's MirrorMaker 2 configuration, from the platforms' client settings;
- ``runner``: keeps each flow's MirrorMaker 2 process running and measures its lag;
- ``lag``, ``metrics``: the replication lag and the flows' gauges;
- ``cascade``: a district's mirrored catalog events folded into the city's aggregate catalog.
"""

from govbus.federation.agreements import Agreement, AgreementBook, AgreementError, offer
from govbus.federation.needs import FederationNeeds, Flow, needs_of

__all__ = [
    "Agreement",
    "AgreementBook",
    "AgreementError",
    "FederationNeeds",
    "Flow",
    "needs_of",
    "offer",
]
