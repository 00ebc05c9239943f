"""Content-Security-Policy: scripts only from our own static files, as a second line against XSS.

Item text, metadata and guideline markdown are escaped or sanitized already; this header
makes any markup that slipped through inert (no inline scripts or handlers run). Images may
come from anywhere (image items point at their own URLs) and inline styles are allowed
because Plotly and htmx set them.
"""

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: http: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
