"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): score = sum of 1 / (k + rank)
over the rankings a document appears in. Pure."""

RRF_K = 60


def reciprocal_rank_fusion(*rankings: list[int], k: int = RRF_K) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
