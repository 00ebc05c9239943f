"""Cleaned-dataset export and dataset versions, split by stage.

Why inside the analysis app: an export needs analysis's consensus (`analysis.metrics`), its
loaders (`analysis.loaders`) and its label-issue runs (`analysis.models.LabelIssue`), while
nothing in analysis needs export, so export sits downstream of both `labeling` and `analysis`
(`config` <- `labeling` <- `analysis` <- export). The repository's top level is fixed, so it
is a package of the analysis app rather than an app of its own.

The stages, in the order an export runs:

- `params`: the one declaration of the export's query parameters (parsing, the OpenAPI
  schema, the export page's form and bench/export.py all read it).
- `decisions`: the final label of every item (`LabelSource` says where it came from) and which
  items the filters keep, as numpy arrays; `span_decisions` the same for span projects (the
  final spans of every item, decided per token).
- `rows`: the kept items (or their annotations) read in keyset pages of NamedTuples.
- `formats`: one writer module per file format behind a registry.
- `plan`: `DatasetExport` ties the stages together and streams the bytes.
- `versions`: recording a `DatasetVersion`, its label snapshot, re-download and diff.
- `api`, `views`, `urls`: the REST endpoints and the export and diff pages.

How an export stays in constant memory at a million items: the label decisions are computed
once as arrays over every item id (about 40 bytes per item, no ORM object per row); the kept
items are read in keyset pages (`id BETWEEN first AND last`) with `values_list`; each page is
written as bytes and handed to `StreamingHttpResponse`, then dropped.

Determinism (a version downloads byte-identical while the data is unchanged): rows come in
item id order (annotations: annotation id order), columns in a fixed order (data and metadata
keys sorted), no timestamps of the export itself inside the file, floats written by repr,
and Parquet written by pyarrow from explicit arrays and a fixed schema.
"""
