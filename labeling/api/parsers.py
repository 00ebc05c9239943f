"""JSON parsing that refuses what cannot be stored or echoed back.

JSON may escape lone UTF-16 surrogates (`"\\ud800"`); Python decodes them into strings that
neither PostgreSQL nor the JSON renderer can encode, so an error message echoing the value
would turn a bad request into a 500. They are refused at parse time with a 400.
"""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                "JSON parse error - the body contains a lone surrogate (\\ud800-\\udfff)."
            )
        except (TypeError, ValueError):
            raise ParseError("JSON parse error - the body is not plain JSON.")
        return data


API_PARSERS = [StrictJSONParser, FormParser, MultiPartParser]
