"""Population database (issue 7): import 16 source tables, merge by ID number, classify. Pure Python.

``models`` (the contract) · ``readers`` (CSV/XLSX streaming) · ``sources`` (declarative mappings,
import) · ``rules`` (survivorship) · ``merge`` (``merge_partition``) · ``classify`` · ``pipeline``
(the local run) · ``accuracy`` (against generated truth). See docs/population.md.
"""
