"""Static files storage for production: hashed, compressed, and ES-module imports rewritten."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's manifest storage, also rewriting ``import ... from './x.js'`` to hashed names.

    The talk page is plain ES modules importing each other; without this, the imported modules
    would be served under their unhashed names and could be cached stale after a deploy.
    """

    support_js_module_import_aggregation = True
