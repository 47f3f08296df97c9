"""Issue #10's classes of mail nobody here had seen, on the cases of tests/mail_class_cases.py.

Each case is a habit of a real client, written here by hand. The scoring rules live in
bench/mail_classes.py (the script that prints the per-class table); these tests import
it so there is one copy of them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from mail_class_cases import TEXT_CASES, TextCase

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mail_classes", ROOT / "bench" / "mail_classes.py")
assert _spec is not None and _spec.loader is not None
mail_classes = importlib.util.module_from_spec(_spec)
sys.modules["mail_classes"] = mail_classes
_spec.loader.exec_module(mail_classes)


@pytest.mark.parametrize("case", TEXT_CASES, ids=lambda c: f"class{c.cls}-{c.name}")
def test_stored_text_is_what_the_sender_newly_wrote(case: TextCase) -> None:
    assert mail_classes.check_text(case) is None
