"""The wrong-language check: py3langid on a seeded sample, rates per (dataset, language), a threshold."""

import pytest

from hybrid_repro.config import LangIdCheckConfig
from hybrid_repro.data.langid_check import DistinctSample, OutputSamples, check_samples, identify
from hybrid_repro.errors import HybridReproError

GERMAN = ["Das Haus hat ein rotes Dach und einen großen Garten.", "Die Brücke wurde im Jahr 1990 gebaut.",
          "Wo wohnt der Arzt, der neben dem Fluss arbeitet?", "Katzen schlafen fast den ganzen Tag lang."]
ENGLISH = ["The house has a red roof and a large garden.", "The bridge was built in the year 1990."]


def check_languages(texts, config, seed):
    """The check of outputs given whole: {(dataset, language): texts}, fed as the translate stage feeds them."""
    samples = OutputSamples(config, seed)
    for (dataset, lang), outputs in texts.items():
        samples.add(dataset, lang, outputs)
    return check_samples(samples)


def sample_texts(texts, config, seed):
    sample = DistinctSample(config.sample_size, config.min_chars, seed)
    for text in texts:
        sample.add(text)
    return sample.texts()


def test_detector_knows_the_paper_languages_offline():
    texts = {"de": GERMAN[0], "en": ENGLISH[0], "ru": "Дом с красной крышей и большим садом.",
             "ar": "منزل بسقف أحمر وحديقة كبيرة", "zh": "这是一座红色屋顶的房子。", "th": "บ้านที่มีหลังคาสีแดง",
             "hi": "लाल छत वाला एक बड़ा घर है", "tr": "Kırmızı çatılı ve büyük bahçeli bir ev."}
    assert identify(list(texts.values())) == list(texts)


def test_wrong_language_rate_per_dataset_and_language():
    config = LangIdCheckConfig(max_wrong_rate=0.5, min_chars=20)
    report = check_languages({("qa", "de"): GERMAN + ENGLISH[:1] + ["Ja."], ("faq", "de"): GERMAN}, config, seed=1)
    assert report["qa"]["de"] == {"checked": 5, "wrong": 1, "wrong_rate": 0.2, "detected_instead": {"en": 1}}
    assert report["faq"]["de"]["wrong_rate"] == 0.0


def test_rate_above_the_threshold_fails_naming_the_output():
    config = LangIdCheckConfig(max_wrong_rate=0.2)
    with pytest.raises(HybridReproError, match=r"qa/de: 33.3% \({'en': 2}\)"):
        check_languages({("qa", "de"): GERMAN + ENGLISH}, config, seed=1)


def test_sample_is_seeded_distinct_and_skips_short_texts():
    config = LangIdCheckConfig(sample_size=2, min_chars=20)
    texts = GERMAN + GERMAN + ["Kurz."]
    first = sample_texts(texts, config, "s")
    assert first == sample_texts(texts, config, "s") and len(set(first)) == 2 and "Kurz." not in first
    assert sample_texts(["Kurz."], config, "s") == []
    report = check_languages({("qa", "de"): ["Kurz."]}, config, seed=1)
    assert report["qa"]["de"]["checked"] == 0 and report["qa"]["de"]["wrong_rate"] is None
