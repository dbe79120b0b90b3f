"""The shared purchase ledger, on SQLite and on a real PostgreSQL server the tests start."""
