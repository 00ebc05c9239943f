"""The file formats an import reads: format name -> Parser (see `labeling.importing`)."""

from labeling.importing.parsers import conll, csv_file, jsonl, labelstudio
from labeling.importing.records import Parser

PARSERS: dict[str, Parser] = {
    "csv": csv_file.PARSER,
    "jsonl": jsonl.PARSER,
    "labelstudio": labelstudio.PARSER,
    "conll": conll.PARSER,
}

FORMAT_CHOICES = [(name, parser.label) for name, parser in PARSERS.items()]
