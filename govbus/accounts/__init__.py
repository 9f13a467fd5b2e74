"""People's accounts on the platform: who may log in to the web console, for which department
and with which role, and the audit log of what each of them did (article 22: 谁访问、谁使用、
谁负责 — every use of shared data is traceable to a person and a department).

``model`` holds the tables (one Alembic history with the catalog, migration ``0004``);
``store`` the service (``Accounts``): create, authenticate, audit.
"""

from govbus.accounts.store import ROLES, Account, AccountError, Accounts, AuditEntry

__all__ = ["ROLES", "Account", "AccountError", "Accounts", "AuditEntry"]
