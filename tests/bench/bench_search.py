"""Search benchmarks, in a fresh SQLite node home (a child process):

1. Quality on the labelled evaluation (tests/records/search/evaluation.py) over seeded demo data:
   recall@5, MRR@10 and nDCG@10 for dense-only, full-text-only and hybrid retrieval, and how well the
   answer threshold refuses the questions whose answer is absent (with the calibration data).
2. Indexing throughput: `search reindex` of the seeded records against raw model.encode of the very
   same chunk texts (same batch size, model loaded before either is timed).
3. At 100,000 chunks: query latency (median, p95) of a full hybrid query (encode the question, vector
   search under the permission mask, FTS5 query, fusion, fetch of the chunks), the vector cache's
   memory, its cold load time, and the disk the index takes (database growth).
   The 100,000 chunks are synthesized: the real seeded chunks are copied with fresh patient ids
   until there are 100,000, each copy's vector being the original plus Gaussian noise (sigma 0.02 per
   dimension), re-normalised; texts are the originals, so the full-text index sees real word
   statistics. Only part 2 measures real encoding speed.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import ROOT, manage, node_env, print_table, write_result

PATIENTS = int(os.environ.get("BENCH_SEARCH_PATIENTS", "120"))
SEED = int(os.environ.get("BENCH_SEARCH_SEED", "7"))
CHUNKS = int(os.environ.get("BENCH_SEARCH_CHUNKS", "100000"))
QUERIES = int(os.environ.get("BENCH_SEARCH_QUERIES", "200"))

CHILD = r"""
import json, os, random, statistics, sys, time, uuid
import django; django.setup()
import numpy as np
from accounts.services import create_user
from records.search import embedding, selectors, services
from records.search.models import Chunk
from tests.records.search import evaluation as ev

PATIENTS, SEED, CHUNKS, QUERIES = %(patients)d, %(seed)d, %(chunks)d, %(queries)d
db_path = os.path.join(os.environ["SILICONHEALTH_HOME"], "db.sqlite3")
out = {"patients": PATIENTS, "seed": SEED}
by_scenario = ev.seed(patients=PATIENTS, seed=SEED)
user = create_user(username="bench_clinician", role="clinician", password="x" * 16, validate=False)
size_before = os.path.getsize(db_path)

embedding.get_model()  # loaded once, outside every timing
started, cpu_started = time.perf_counter(), time.process_time()
chunk_count = services.reindex_all()
reindex_s, reindex_cpu = time.perf_counter() - started, time.process_time() - cpu_started
from records.search.chunking import embedding_text
texts = [embedding_text(t) for t in Chunk.objects.order_by("id").values_list("text", flat=True)]
started, cpu_started = time.perf_counter(), time.process_time()
embedding.get_model().encode(texts, batch_size=embedding.BATCH_SIZE, normalize_embeddings=True)
encode_s, encode_cpu = time.perf_counter() - started, time.process_time() - cpu_started
out["indexing"] = {
    "chunks": chunk_count, "reindex_s": round(reindex_s, 2), "encode_s": round(encode_s, 2),
    "reindex_per_s": round(chunk_count / reindex_s), "encode_per_s": round(chunk_count / encode_s),
    "ratio": round(encode_s / reindex_s, 3),
    # CPU seconds of the process (all threads): steadier than wall time when the box is shared.
    "cpu_ratio": round(encode_cpu / reindex_cpu, 3),
}

questions = ev.questions(by_scenario)
out["questions"] = {"labelled": sum(1 for q in questions if q.relevant), "absent": sum(1 for q in questions if not q.scenario)}
quality, supports = {}, {"answerable": [], "absent": []}
for mode in ("dense", "fts", "hybrid"):
    r5, mrr, ndcg = [], [], []
    for q in questions:
        filters = selectors.SearchFilters(patient_ids=(q.patient_id,)) if q.patient_id else None
        got = selectors.retrieve(user=user, question=q.text, filters=filters, mode=mode, limit=10)
        ranked = ev.unique_records([str(h.chunk.record_id) for h in got.hits])
        if mode == "hybrid":
            top = max((h.support for h in got.hits), default=0.0)
            supports["answerable" if q.scenario else "absent"].append(round(top, 3))
        if not q.relevant:
            continue
        r5.append(ev.recall_at(ranked, q.relevant, 5)); mrr.append(ev.mrr_at(ranked, q.relevant, 10)); ndcg.append(ev.ndcg_at(ranked, q.relevant, 10))
    quality[mode] = {"recall@5": round(statistics.mean(r5), 3), "mrr@10": round(statistics.mean(mrr), 3), "ndcg@10": round(statistics.mean(ndcg), 3)}
out["quality"] = quality
def refusals(threshold, absent, answerable):
    refused_absent = sum(1 for s in absent if s < threshold)
    refused_answerable = sum(1 for s in answerable if s < threshold)
    return refused_absent, refused_answerable

def correct(t, absent, answerable):
    return sum(1 for s in absent if s < t) + sum(1 for s in answerable if s >= t)

def fit_threshold(absent, answerable):
    # The cut between two observed supports that classifies the most questions right (refuse the
    # absent ones, answer the others); among equals, the lowest.
    values = sorted(set(absent) | set(answerable))
    cuts = [(a + b) / 2 for a, b in zip(values, values[1:])] or values
    return max(cuts, key=lambda t: (correct(t, absent, answerable), -t))

# Two-fold cross-validation: the threshold is fitted on one half of the questions (every other one of
# each class) and judged on the other half, then the halves swap; the counts of both held-out halves add up.
held = {"refused_absent": 0, "refused_answerable": 0, "absent": 0, "thresholds": []}
for fold in (0, 1):
    fit_abs, fit_ans = supports["absent"][fold::2], supports["answerable"][fold::2]
    test_abs, test_ans = supports["absent"][1 - fold::2], supports["answerable"][1 - fold::2]
    t = fit_threshold(fit_abs, fit_ans)
    ra, rn = refusals(t, test_abs, test_ans)
    held["refused_absent"] += ra; held["refused_answerable"] += rn; held["absent"] += len(test_abs)
    held["thresholds"].append(round(t, 3))
threshold = selectors.ANSWER_THRESHOLD
refused_absent, refused_answerable = refusals(threshold, supports["absent"], supports["answerable"])
out["no_answer"] = {
    "threshold": threshold,
    "cv_thresholds": held["thresholds"],
    "cv_precision": round(held["refused_absent"] / max(1, held["refused_absent"] + held["refused_answerable"]), 3),
    "cv_recall": round(held["refused_absent"] / max(1, held["absent"]), 3),
    "precision": round(refused_absent / max(1, refused_absent + refused_answerable), 3),
    "recall": round(refused_absent / max(1, len(supports["absent"])), 3),
    "absent_support_max": max(supports["absent"]), "answerable_support_min": min(supports["answerable"]),
    "absent_supports": sorted(supports["absent"]), "answerable_supports_lowest": sorted(supports["answerable"])[:8],
}

# --- 100,000 chunks -----------------------------------------------------------------------------------
from ledger.services import seal_checkpoint
seal_checkpoint()  # so that every cited entry's inclusion proof is computed and checked, as in use
real = list(Chunk.objects.order_by("id").values("record_id", "record_type", "kind", "category", "patient_id", "code", "date", "origin", "entry_index", "position", "text", "search_text", "vector"))
rng = np.random.default_rng(SEED)
batch, copies, count = [], 0, len(real)
while count < CHUNKS:
    copies += 1
    patient = uuid.uuid4()
    for row in real[: CHUNKS - count]:
        vector = np.frombuffer(bytes(row["vector"]), dtype="<f4") + rng.normal(0, 0.02, embedding.DIMENSIONS).astype(np.float32)
        vector /= np.linalg.norm(vector)
        batch.append(Chunk(**{**row, "patient_id": patient, "record_id": uuid.uuid4(), "vector": embedding.to_blob(vector)}))
        count += 1
    if len(batch) >= 20000:
        Chunk.objects.bulk_create(batch, batch_size=2000); batch = []
Chunk.objects.bulk_create(batch, batch_size=2000)
services._bump_generation()
total = Chunk.objects.count()
selectors.forget_vector_cache()
started = time.perf_counter()
index = selectors.vector_index()
load_s = time.perf_counter() - started
texts = [q.text for q in questions]
load_before = os.getloadavg()[0]
latencies, cpu = [], []
for i in range(QUERIES):
    started, cpu_started = time.perf_counter(), time.process_time()
    selectors.retrieve(user=user, question=texts[i %% len(texts)], mode="hybrid", limit=10)
    latencies.append(time.perf_counter() - started)
    cpu.append(time.process_time() - cpu_started)
latencies.sort()
# The full answer as a user gets it (retrieval, passages and highlights, verified marks, inclusion
# proofs, the access-log row), and each stage of it run on its own, as shares of their sum: the shares
# hold when other work on the box stretches every stage alike.
from audit.services import record_access
from records.search import answers, fts
from records.search.terms import dense_query, query_terms
asks, stages = [], {n: [] for n in ("encode", "fts", "vector", "fetch+fuse", "answer", "access log")}
scope = selectors.Filters(categories=selectors.readable_categories(user))
for i in range(min(QUERIES, 100)):
    q = texts[i %% len(texts)]
    started = time.perf_counter()
    services.ask(user=user, question=q)
    asks.append(time.perf_counter() - started)
    t0 = time.perf_counter(); terms = query_terms(q); vector = embedding.encode([dense_query(q, terms)])[0]
    t1 = time.perf_counter(); fts.search(terms, scope, (None, None), selectors.CANDIDATES)
    t2 = time.perf_counter(); selectors.vector_index().search(vector, scope, selectors.CANDIDATES)
    t3 = time.perf_counter(); got = selectors.retrieve(user=user, question=q, mode="fts", limit=10)
    t4 = time.perf_counter(); answer = answers.build_answer(got)
    t5 = time.perf_counter(); record_access(user=user, action="search", patient_id=None, detail={"q": q, "results": len(answer.passages)}, request=None)
    t6 = time.perf_counter()
    fetch = max(0.0, (t4 - t3) - (t2 - t1))  # the fts-only retrieve less its full-text query
    for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, fetch, t5 - t4, t6 - t5)):
        stages[name].append(value)
asks.sort()
medians = {n: statistics.median(v) for n, v in stages.items()}
load_after = os.getloadavg()[0]
dense_only = []
everything = selectors.Filters(categories=("demographics", "clinical"))
for i in range(min(QUERIES, 100)):
    vector = embedding.encode([texts[i %% len(texts)]])[0]
    started = time.perf_counter()
    index.search(vector, everything, 50)
    dense_only.append(time.perf_counter() - started)
with django.db.connection.cursor() as cursor:
    cursor.execute("VACUUM")
out["at_scale"] = {
    "chunks": total, "synthetic_copies": copies,
    "query_median_ms": round(statistics.median(latencies) * 1000, 1),
    "query_p95_ms": round(latencies[int(round(0.95 * (len(latencies) - 1)))] * 1000, 1),
    "query_cpu_median_ms": round(statistics.median(cpu) * 1000, 1),
    "ask_median_ms": round(statistics.median(asks) * 1000, 1),
    "ask_p95_ms": round(asks[int(round(0.95 * (len(asks) - 1)))] * 1000, 1),
    "stage_median_ms": {n: round(v * 1000, 1) for n, v in medians.items()},
    "stage_share": {n: round(v / sum(medians.values()), 3) for n, v in medians.items()},
    "load_1min": [round(load_before, 2), round(load_after, 2)], "cpus": os.cpu_count(),
    "vector_search_median_ms": round(statistics.median(dense_only) * 1000, 2),
    "index_memory_mb": round(index.nbytes / 2**20, 1),
    "cold_load_s": round(load_s, 2),
    "disk_mb": round((os.path.getsize(db_path) - size_before) / 2**20, 1),
}
print(json.dumps(out))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        home = Path(tmp)
        manage(home, "migrate", "--noinput")
        code = CHILD % {"patients": PATIENTS, "seed": SEED, "chunks": CHUNKS, "queries": QUERIES}
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=node_env(home, SILICONHEALTH_SEARCH_INDEX_ON_WRITE="0"),
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(result.stderr[-3000:])
        out = json.loads(result.stdout.strip().splitlines()[-1])
    quality, indexing, scale, refuse = out["quality"], out["indexing"], out["at_scale"], out["no_answer"]
    print_table(
        f"search quality ({out['questions']['labelled']} labelled questions, {out['patients']} patients)",
        [("mode", "recall@5", "MRR@10", "nDCG@10")]
        + [(m, quality[m]["recall@5"], quality[m]["mrr@10"], quality[m]["ndcg@10"]) for m in quality],
    )
    print_table(
        f"no answer ({out['questions']['absent']} absent questions; 2-fold cross-validated: threshold fitted "
        f"on one half of the questions, judged on the other; thresholds {refuse['cv_thresholds']})",
        [
            ("precision (held out)", refuse["cv_precision"]),
            ("recall (held out)", refuse["cv_recall"]),
            (f"precision at the shipped {refuse['threshold']} (in-sample)", refuse["precision"]),
            (f"recall at the shipped {refuse['threshold']} (in-sample)", refuse["recall"]),
            ("absent support max", refuse["absent_support_max"]),
            ("answerable support min", refuse["answerable_support_min"]),
        ],
    )
    print_table(
        "indexing throughput (goal: ratio >= 0.8)",
        [
            ("chunks", indexing["chunks"]),
            ("search reindex", f"{indexing['reindex_per_s']} chunks/s"),
            ("raw model.encode", f"{indexing['encode_per_s']} chunks/s"),
            ("ratio (wall time)", indexing["ratio"]),
            ("ratio (CPU time of the process)", indexing["cpu_ratio"]),
        ],
    )
    print_table(
        f"at {scale['chunks']} chunks (goal: p95 < 100 ms)",
        [
            ("hybrid query median", f"{scale['query_median_ms']} ms"),
            ("hybrid query p95", f"{scale['query_p95_ms']} ms"),
            ("hybrid query CPU median (all threads)", f"{scale['query_cpu_median_ms']} ms"),
            ("full answer median (ask)", f"{scale['ask_median_ms']} ms"),
            ("full answer p95 (ask)", f"{scale['ask_p95_ms']} ms"),
            ("load average (1 min) before/after", f"{scale['load_1min']} on {scale['cpus']} cpus"),
            ("vector search median", f"{scale['vector_search_median_ms']} ms"),
            ("vector cache memory", f"{scale['index_memory_mb']} MB"),
            ("vector cache cold load", f"{scale['cold_load_s']} s"),
            ("disk (chunks + FTS)", f"{scale['disk_mb']} MB"),
        ],
    )
    print_table(
        "stages of one answer at scale, each run alone (median ms, share of their sum)",
        [
            (n, f"{scale['stage_median_ms'][n]} ms", f"{scale['stage_share'][n]:.0%}")
            for n in scale["stage_share"]
        ],
    )
    path = write_result("search", out)
    print(f"\n  -> {path.relative_to(ROOT)}")
