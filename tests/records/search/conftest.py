import pytest


@pytest.fixture(autouse=True)
def _fresh_vector_cache():
    """The vector index is cached per process and keyed by the index generation, which starts again
    from the same number in every test's rolled-back database: a test must not see the last one's."""
    from records.search.selectors import forget_vector_cache

    forget_vector_cache()
    yield
    forget_vector_cache()
