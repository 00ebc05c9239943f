"""`{{ batch.message|import_details }}`: what a succeeded import did besides its row count."""

from django import template

from labeling.importing.jobs import result_details

register = template.Library()
register.filter("import_details", result_details)
