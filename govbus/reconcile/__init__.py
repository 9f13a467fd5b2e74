"""Reconcile: make the broker's users, topics and ACLs match what the catalog says."""
