"""Provenance for people and tools outside dotnb: the lineage of a file or a run
exported as W3C PROV (:mod:`dotnb.provenance.w3c`) or as a self-contained HTML
report (:mod:`dotnb.provenance.report`).  Reads the store only."""
