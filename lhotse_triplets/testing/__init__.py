"""Dummy cuts and backends for tests."""
