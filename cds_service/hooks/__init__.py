"""The use cases: the CDS Hooks services, their discovery entries and request checks."""
