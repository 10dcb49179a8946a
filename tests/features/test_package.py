"""The public surface of loopml.features."""

from __future__ import annotations

from loopml import features


def test_all_matches_public_names_and_is_sorted() -> None:
    public = {n for n in vars(features) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(features, n)).__name__ == "module"}
    assert sorted(features.__all__) == sorted(public - modules)
    assert features.__all__ == sorted(features.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_name_has_a_docstring() -> None:
    for name in features.__all__:
        obj = getattr(features, name)
        if callable(obj):
            assert obj.__doc__, name
