"""Front-end agents (前置机共享, article 16): a department's database connected to the bus.

Most departments run their business systems on a relational database and connect to the
exchange through a front-end machine (前置机) holding a front-end database (前置库) that their
system writes to and reads from. The agents here do the rest, through the SDKs every
department uses, so validation, dead letters, grants and the usage audit are the same:

- the source (``source``) publishes changed rows of mapped tables as records of the
  department's resources (provider SDK), by watermark, with deletes, acknowledged before the
  watermark moves;
- the sink (``sink``) keeps the resources the department may read in tables of its own
  (consumer SDK), upserting by key, deleting on tombstones, committing offsets after the
  database.

``mapping`` reads and checks the mapping file (docs/agent.md); ``rows`` turns rows into
records; ``changes`` finds changed rows and stores watermarks; ``database`` opens the
front-end database; ``sink_tables`` creates and migrates the sink's tables; ``service`` is the
health endpoint and the kill tests' crash points.

This is an app layer beside the CLI (docs/architecture.md): it imports the core, the provider
SDK and the consumer SDK; only ``govbus.cli`` and ``govbus.demo`` import it.
"""
