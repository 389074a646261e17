"""The local embedded stack: broker and ClickHouse as child processes, and the demo."""
