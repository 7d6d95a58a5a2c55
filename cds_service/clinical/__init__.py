"""The clinical core: plain dataclasses and pure functions, read next to clinical-rules.md.

Nothing here imports Flask, requests or fhir.resources, and nothing reads the clock:
"today" is always a parameter.
"""
