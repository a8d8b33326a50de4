"""Sentence splitting of source texts and rejoining of their translations."""

import pytest

from hybrid_repro.data.sentences import split_sentences


@pytest.mark.parametrize(
    "lang, text, sentences",
    [
        ("en", "Dr. Smith arrived at 5 p.m. on Monday! Did he stay? Yes.",
         ("Dr. Smith arrived at 5 p.m. on Monday!", "Did he stay?", "Yes.")),
        ("zh", "我是学生。你呢？他很好！", ("我是学生。", "你呢？", "他很好！")),
        ("hi", "मैं छात्र हूँ। वह शिक्षक है।", ("मैं छात्र हूँ।", "वह शिक्षक है।")),
        ("ar", "أنا طالب. هل أنت معلم؟ نعم.", ("أنا طالب.", "هل أنت معلم؟", "نعم.")),
        ("el", "Είμαι μαθητής. Είσαι δάσκαλος; Ναι.", ("Είμαι μαθητής.", "Είσαι δάσκαλος;", "Ναι.")),
    ],
)
def test_sentence_marks_of_each_script_split(lang, text, sentences):
    assert split_sentences(text, lang).sentences == sentences


def test_rejoin_keeps_order_and_line_breaks_in_the_target_convention():
    split = split_sentences("  First one. Second one.\n\nThird one.  ", "en")
    assert split.sentences == ("First one.", "Second one.", "Third one.")
    assert split.join(["A.", "B.", "C."], "de") == "A. B.\nC."
    assert split.join(["甲。", "乙。", "丙。"], "zh") == "甲。乙。\n丙。"
    with pytest.raises(ValueError, match="2 translations for 3 sentences"):
        split.join(["A.", "B."], "de")


def test_empty_and_blank_texts_have_no_sentences():
    for text in ("", "   \n "):
        split = split_sentences(text, "en")
        assert split.sentences == () and split.join([], "de") == ""
