"""Subscribing to resources: checks, decoding, at-least-once delivery and usage audit."""
