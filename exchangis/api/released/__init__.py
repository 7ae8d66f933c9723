"""The released Exchangis server's dialect, served under the alias prefix only.

Its routes are registered before the shared blueprints, so where one has the same method and
path as a shared route, the alias prefix answers in the released shape and the primary prefix
keeps our contract (``docs/design/released-dialect.md``). Every view maps onto our services.
"""

from flask_smorest import Blueprint

blp = Blueprint("released", __name__, description="The released Exchangis server's dialect")

from exchangis.api.released import (  # noqa: E402,F401  (routes register on import)
    datasources,
    editor,
    jobs,
    projects,
)
