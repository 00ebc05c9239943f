"""Static files as production serves them: content-hashed names and gzip copies.

`collectstatic` writes both into STATIC_ROOT and WhiteNoise serves them: compressed when the
browser accepts gzip, and cached for good (`immutable`), since a changed file gets a new name.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names with DEBUG on too, once collected (`make run` collects at every start).

    Django leaves the hash out under DEBUG so that edits show without collecting again; the
    demo server does not reload code either, and the hash is what lets a browser keep
    Plotly's 4.8 MB script instead of asking for it on every chart page.
    """

    def url(self, name, force=False):
        return super().url(name, force=True)
