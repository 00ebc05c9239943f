"""Every API error is JSON `{"detail": ...}` with a 4xx status, never an HTML page or a 500."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(response.data, list):
            response.data = {"detail": response.data}
        elif isinstance(response.data, dict) and "detail" not in response.data:
            response.data = {"detail": "Invalid request.", **response.data}
        return response
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "The request conflicts with existing data."}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, DatabaseError):
        logger.exception("database unavailable")
        return Response(
            {"detail": "The database is unavailable; try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return None
