"""Disputes about shared data (article 19): rules, topics, the SDK and the CLI."""
