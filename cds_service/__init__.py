"""CDS Hooks 2.0 service: IgM response assessment in Waldenström macroglobulinemia.

The request flows one way through modules named for their step:
web.routes (HTTP) -> hooks.validation -> fhir.prefetch (+ fhir.client) -> fhir.parsing ->
fhir.mapping -> clinical (assessment, pure) -> cards (top-level package) -> web.routes.
`hooks/service.py` strings the steps together; `app.py` builds the Flask app.

Packages by layer; each imports only from layers below it:
tools/ (command lines) -> web/ (HTTP) -> hooks/, smart/ (use cases) -> fhir/ (FHIR in),
cards/ -> store/, config.py, clinical/ (the pure core).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wm-igm-cds")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
