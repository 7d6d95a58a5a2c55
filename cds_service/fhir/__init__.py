"""FHIR in: the prefetch, the FHIR server, reading resources, mapping them to the core's models."""
