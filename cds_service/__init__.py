"""CDS Hooks 2.0 service: IgM response assessment in Waldenström macroglobulinemia.

The request flows one way through modules named for their step:
routes (HTTP) -> validation -> prefetch (+ fhir_client) -> fhir_parsing -> mapping ->
clinical (assessment, pure) -> cards (top-level package) -> routes.
`service.py` strings the steps together; `app.py` builds the Flask app.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wm-igm-cds")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
