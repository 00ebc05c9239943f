"""Importing items and annotations from files, one module per stage.

    options.py      the import parameters, declared once (API, page, command, OpenAPI schema)
    readers.py      bytes -> strictly decoded UTF-8 text -> lines or JSON values; size limits
    records.py      what a parser is given (ParseContext) and yields (ItemRow, ItemChunk,
                    AnnotationRow, RowError)
    parsers/        one module per file format, and the registry: format name -> Parser
    validation.py   the check pass: the whole file read once -> a Plan and the row errors
    span_check.py   span projects: each annotation's spans against its item's text
                    (`labeling.spans.spans_clean`, the one rule), in the check and write passes
    writers.py      the write passes: items, then annotations (COPY on PostgreSQL)
    progress.py     a batch's progress while it runs
    jobs.py         import_file (now), import_submit / import_run (as a Celery job)

An import reads its file in streaming passes with bounded memory:

1. check: every row is checked and only the ids are kept; nothing is written. Any bad row
   rejects the whole file: the batch is marked failed with up to 100 `{row, reason}` errors.
2. write: the file is read again and written in one transaction, in batches; a file of items
   with their annotations (Label Studio) is read a third time for the annotations.

Row numbers in errors count the CSV header as row 1 (so they match a spreadsheet's line
numbers); JSON Lines and CoNLL count lines; Label Studio counts tasks from 1. `row` is null for
problems with the whole file.

Adding a file format (CoNLL, Prodigy JSONL, ...) takes one new module in `parsers/` and one
line in `parsers.PARSERS`, nothing else:

    # parsers/conll.py
    def parse(source: ByteCounter, ctx: ParseContext) -> Iterator[Record]:
        for row, line in enumerate(text_lines(decoded_chunks(source)), start=1):
            ...  # yield ItemRow / AnnotationRow / RowError, in file order
    PARSER = Parser(label="CoNLL", parse=parse)

    # parsers/__init__.py
    PARSERS = {..., "conll": conll.PARSER}

`parse` reads the file from its start on each pass and must yield the same records each time;
`ctx.options` holds the parameters, `ctx.encode` says whether to encode the item JSON (write
passes) or only check it. The rules every format shares (labels of a cell, an item's content
by data type, an item from JSON values) are in `parsers/rules.py`. The format then appears in
the API's `format` choices, its OpenAPI enum, the upload page and `manage.py import_items`.
"""
