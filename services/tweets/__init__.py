"""The tweets backend: posts stored durably in SQLite."""
