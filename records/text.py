import unicodedata


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced: 'Amélie  N'Diaye' -> 'amelie n'diaye'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())
