from hypothesis import given
from hypothesis import strategies as st

from records.patient_number import ALPHABET, check_character, format_patient_number, is_valid_patient_number


def test_format_and_validate():
    number = format_patient_number("KQ7F3A", 123)
    assert number.startswith("KQ7F3A-000123-")
    assert is_valid_patient_number(number)
    assert is_valid_patient_number(number.lower())
    assert not is_valid_patient_number("KQ7F3A-000123")
    assert not is_valid_patient_number("")


@given(
    prefix=st.text(alphabet=ALPHABET, min_size=1, max_size=8),
    sequence=st.integers(1, 10**7),
    position=st.integers(0, 100),
    replacement=st.sampled_from(ALPHABET),
)
def test_every_single_character_error_is_caught(prefix, sequence, position, replacement):
    number = format_patient_number(prefix, sequence)
    characters = [c for c in number]
    editable = [i for i, c in enumerate(characters) if c != "-"]
    index = editable[position % len(editable)]
    if characters[index] == replacement or (
        index > len(prefix) and not replacement.isdigit() and index < len(number) - 2
    ):
        return
    characters[index] = replacement
    assert not is_valid_patient_number("".join(characters))


def test_check_character_differs_for_adjacent_sequences():
    assert check_character("AB000001") != check_character("AB000002")
