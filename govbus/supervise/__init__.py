"""Supervision (chapter 6 of the measures): article 26's violations, their rectification, and
the yearly evaluation of departments (articles 20, 23, 26).

``rules`` (pure: the seven kinds, findings, detectors on values, the workflow's states),
``model`` (tables), ``ledger`` (the SQL ledger with its outbox), ``sources`` (the detectors'
IO: database and broker), ``evaluation`` (pure: the indicators of docs/evaluation.md),
``records`` (the evaluation's inputs from the database), ``report`` (xlsx and HTML),
``metrics`` (a collector for ``govbus exporter``).
"""
