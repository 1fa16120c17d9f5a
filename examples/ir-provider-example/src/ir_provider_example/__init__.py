"""An out-of-tree provider package for ir-core (the template for provider authors).

Nothing here runs at import: ir-core imports :mod:`ir_provider_example.provider`
through the ``ir.providers`` entry point on its first dispatch, and reads
:data:`ir_provider_example.platform.PLATFORM` through ``ir.platforms``.
"""

__version__ = "0.1.0"

PROVIDER = "example"
