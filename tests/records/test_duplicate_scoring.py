"""The duplicate check's name similarity skips rows that cannot reach the threshold without changing
any decision: a floored similarity is the exact one at or above the floor, and below it otherwise."""

from hypothesis import given
from hypothesis import strategies as st

from records import selectors

# Names the way `fold` leaves them: lower case words of a few common letters, so that pairs often share
# most of their letters (the hard case for a letters-in-common bound) and sometimes swap word order.
WORD = st.text(alphabet="aeimnrsuwkl", min_size=1, max_size=9)
NAME = st.lists(WORD, min_size=1, max_size=3).map(" ".join)


@given(a=NAME, b=NAME, floor=st.sampled_from([0.0, 0.3, 0.6, 0.8]))
def test_a_floored_similarity_decides_as_the_exact_one(a, b, floor):
    exact = selectors._name_similarity(a, b)
    floored = selectors._name_similarity(a, b, floor=floor)
    if exact >= floor:
        assert floored == exact
    else:
        assert floored < floor


@given(given_name=WORD, family_name=WORD)
def test_a_name_in_the_other_order_is_as_similar_as_the_same_order(given_name, family_name):
    swapped = selectors._name_similarity(f"{given_name} {family_name}", f"{family_name} {given_name}", 0.6)
    assert swapped == 1.0


def test_names_with_few_letters_in_common_are_cut_at_the_floor_and_kept_without_one():
    a, b = "amina mwangi", "baraka kimaro"
    assert 0 < selectors._name_similarity(a, b) < 0.6
    assert selectors._name_similarity(a, b, floor=0.6) == 0.0
