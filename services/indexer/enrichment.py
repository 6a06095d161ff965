"""What the recorder learns about a turn before storing it: its language (py3langid, an
offline n-gram model) and, where a rule set is configured, its intent with a confidence."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from convmem.ports import Enrichment

# The model knows 97 languages; most of them (Walloon, Occitan, ...) only ever steal
# probability from the right answer in short chat messages. These cover nearly all chat users.
CHAT_LANGUAGES = [
    "ar", "bg", "bn", "ca", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "he", "hi", "hr", "hu",
    "id", "it", "ja", "ko", "lt", "lv", "ms", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sl", "sr", "sv", "sw",
    "th", "tl", "tr", "uk", "ur", "vi", "zh",
]
# Below this many letters a language guess is noise ("ok", "👍"): store none rather than a wrong one.
_MIN_LETTERS = 12
_MIN_LANGUAGE_PROBABILITY = 0.5

# The default rule set: intent -> patterns (case-insensitive regular expressions). A tenant
# replaces it through CONVMEM_INTENT_RULES (a JSON object of the same shape).
DEFAULT_INTENT_RULES: dict[str, list[str]] = {
    "greeting": [r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|hola|bonjour|hallo|ol[aá])\b"],
    "thanks": [r"\b(thanks|thank you|thx|gracias|merci|danke|obrigad[oa])\b"],
    "goodbye": [r"\b(bye|goodbye|see you|talk (to you )?later|adi[oó]s)\b"],
    "booking": [r"\b(book|booking|reserve|reservation|appointment|schedule)\b"],
    "cancellation": [r"\b(cancel|cancellation|call off)\b"],
    "order_status": [r"\b(where is my|track(ing)?|deliver(y|ed)|shipp(ed|ing)|order (status|number))\b"],
    "refund": [r"\b(refund|money back|return (it|the|my))\b"],
    "complaint": [r"\b(not working|broken|terrible|awful|complain|disappointed|angry|worst|unacceptable)\b"],
    "human_handoff": [r"\b(human|real person|agent|representative|speak to (someone|somebody))\b"],
    "pricing": [r"\b(price|cost|how much|fee|discount|cheaper)\b"],
    "question": [r"\?\s*$", r"^\s*(what|when|where|who|why|how|which|can|could|do|does|is|are)\b"],
}
# A rule set is ordered: the first intent that matches wins, so "question" goes last.


@dataclass(frozen=True)
class IntentRules:
    rules: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[str]]) -> IntentRules:
        compiled = []
        for intent, patterns in mapping.items():
            if not isinstance(patterns, (list, tuple)) or not patterns:
                raise ValueError(f"intent {intent!r} needs a non-empty list of patterns")
            try:
                compiled.append((intent, tuple(re.compile(p, re.IGNORECASE) for p in patterns)))
            except re.error as exc:
                raise ValueError(f"intent {intent!r}: bad pattern: {exc}") from None
        return cls(tuple(compiled))

    def classify(self, text: str) -> tuple[str, float] | None:
        """The first intent in rule order that matches (specific intents come before generic
        ones like "question"). Confidence grows with the patterns it matched and shrinks when
        other intents match too; it is a rule score, not a calibrated probability."""
        matched = [(intent, sum(1 for p in patterns if p.search(text))) for intent, patterns in self.rules]
        matched = [(i, n) for i, n in matched if n]
        if not matched:
            return None
        best, n = matched[0]
        confidence = min(0.95, 0.6 + 0.15 * (n - 1)) / (1 + 0.25 * (len(matched) - 1))
        return best, round(confidence, 3)


def load_rules(spec: str) -> IntentRules | None:
    """"default", "off", or the path of a JSON rule file."""
    if spec == "off":
        return None
    if spec == "default":
        return IntentRules.from_mapping(DEFAULT_INTENT_RULES)
    try:
        mapping = json.loads(Path(spec).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read intent rules from {spec}: {exc}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("intent rules must be a JSON object of intent -> list of patterns")
    return IntentRules.from_mapping(mapping)


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(CHAT_LANGUAGES)
    return identifier


def prepare() -> None:
    """Load the language model now (seconds of decompression): lazily, the first turn a
    recorder records would hold its event loop, and every message behind it, that long."""
    _identifier()


def detect_language(text: str) -> tuple[str, float] | None:
    letters = sum(ch.isalpha() for ch in text)
    if letters < _MIN_LETTERS:
        return None
    language, probability = _identifier().classify(text)
    return (language, float(probability)) if probability >= _MIN_LANGUAGE_PROBABILITY else None


def enrich(text: str, rules: IntentRules | None) -> Enrichment:
    lang = detect_language(text)
    intent = rules.classify(text) if rules is not None else None
    return Enrichment(language=lang[0] if lang else None,
                      intent=intent[0] if intent else None,
                      intent_confidence=intent[1] if intent else None)
