"""The export's file formats: one module per format, registered here by name.

A new format is one module that defines `FORMAT = FileFormat(...)` (see `file_format.py`)
and one line below; `?format=`, the OpenAPI schema and the export page pick it up from here.
"""

from analysis.exports.formats import conll, csv, jsonl, labelstudio, parquet
from analysis.exports.formats.file_format import FileFormat

FORMATS: dict[str, FileFormat] = {
    csv.FORMAT.name: csv.FORMAT,
    jsonl.FORMAT.name: jsonl.FORMAT,
    parquet.FORMAT.name: parquet.FORMAT,
    labelstudio.FORMAT.name: labelstudio.FORMAT,
    conll.FORMAT.name: conll.FORMAT,
}
