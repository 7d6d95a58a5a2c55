"""The shared store: SQLite or PostgreSQL, feedback, used JWT ids, issued cards."""
