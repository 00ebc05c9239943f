"""Content negotiation for views that answer in exactly one format."""

from rest_framework.negotiation import DefaultContentNegotiation


class ViewRenderer(DefaultContentNegotiation):
    """The view's first renderer, whatever `Accept` or `?format=` say.

    Exports: `?format=` names the file format there, not a DRF renderer. The annotator's calls:
    JSON only, and skipping the negotiation spares parsing the query string on every call.
    Parsers are still chosen by Content-Type (a body the view cannot parse answers 415).
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
