"""Last-resort error answers: a database outage is a clean 503, never a stack trace."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

OUTAGE = "The database is unavailable; your work is safe, try again in a moment."


def server_error(request):
    """handler500: Django calls it inside the `except` block, so the exception is at hand."""
    exception = sys.exc_info()[1]
    outage = isinstance(exception, OperationalError | InterfaceError)
    status = 503 if outage else 500
    if request.path.startswith("/api/"):
        detail = OUTAGE if outage else "Internal error; it was logged."
        return JsonResponse({"detail": detail}, status=status)
    template = "503.html" if outage else "500.html"
    return HttpResponse(loader.get_template(template).render({"message": OUTAGE}), status=status)


def not_found(request, exception):
    """handler404: API clients get JSON, people get the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
