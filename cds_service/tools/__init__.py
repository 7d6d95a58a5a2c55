"""The command lines: serve, replay, the fixture FHIR server, the feedback report."""
