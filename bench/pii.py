"""PII detection benchmark: generates a labelled set of chat messages (many formats, several
languages and regions, plus look-alikes that are not personal data: order numbers, dates,
prices, tracking codes, times, invoice references, Luhn-invalid digit runs), runs the
detector (services/retention/pii.py) and prints precision and recall per kind, counting a
finding as right when kind and span match exactly, and the throughput next to a regex-only
baseline measured in the same run.

Phone numbers come from libphonenumber's own example numbers for each region, printed in
international, national and E.164 forms; cards are random Luhn-valid numbers in real issuer
ranges; IBANs are built with valid check digits. Nothing is tuned per sample.

Usage: python bench/pii.py [--samples 3000] [--seed 5]
"""

from __future__ import annotations

import argparse
import random
import re
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.retention.pii import detect, luhn_valid

REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "BR", "MX", "IN", "NL", "PT", "AU", "CA", "ZA", "NG", "KE", "JP"]
TEMPLATES = {
    "en": ["you can reach me at {x}", "my number is {x}, call after 6", "send it to {x} please", "{x} is the best way",
           "new contact: {x}", "text me on {x} when you arrive", "write to {x} about the invoice"],
    "es": ["puedes llamarme al {x}", "mi correo es {x}", "escríbeme a {x} cuando puedas"],
    "pt": ["meu número é {x}", "manda para {x} por favor", "o meu contacto é {x}"],
    "de": ["ruf mich unter {x} an", "meine Adresse ist {x}", "schreib an {x}"],
    "fr": ["appelle-moi au {x}", "mon adresse est {x}", "écris à {x} stp"],
}
LOOKALIKE_TEMPLATES = [
    "order #{o} ships tomorrow", "your order number is {o}", "the meeting is on {d} at {t}", "it costs {p} in total",
    "tracking code {k}", "invoice INV-{o} is overdue", "see you at {t}", "delivered on {d}", "reference {r}",
    "ticket {o}-{o2} was resolved", "the total was {p}, paid {d}", "batch {r} failed", "ID {o}{o2}",
]


@dataclass
class Sample:
    text: str
    spans: list[tuple[str, int, int]]
    region: str


def _phone(rng: random.Random) -> tuple[str, str]:
    region = rng.choice(REGIONS)
    kind = rng.choice([PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE])
    number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    assert number is not None
    # vary the subscriber digits, keeping the number valid
    digits = str(number.national_number)
    for _ in range(20):
        tail = "".join(rng.choice(string.digits) for _ in range(min(4, len(digits) - 3)))
        candidate = phonenumbers.parse(digits[: len(digits) - len(tail)] + tail, region)
        if phonenumbers.is_valid_number(candidate):
            number = candidate
            break
    fmt = rng.choice([PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL, PhoneNumberFormat.E164])
    return phonenumbers.format_number(number, fmt), region


def _email(rng: random.Random) -> str:
    user = rng.choice(["ana", "j.smith", "maria_lopez", "kenji.t", "priya+shop", "o.connor", "li.wei88"])
    domain = rng.choice(["example.com", "mail.example.org", "correo.es", "web.de", "uni-bonn.de", "co.example.uk"])
    return f"{user}{rng.randint(1, 999) if rng.random() < 0.4 else ''}@{domain}"


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("3530", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    check = next(d for d in string.digits if luhn_valid(body + d))
    digits = body + check
    sep = rng.choice(["", " ", "-"])
    groups = [digits[i:i + 4] for i in range(0, len(digits), 4)] if length == 16 else \
        [digits[:4], digits[4:10], digits[10:]]
    return sep.join(groups)


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("ES", 24), ("FR", 27), ("NL", 18), ("PT", 25)])
    bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    if country in ("GB", "NL"):
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + bban[4:]
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.5 else raw


def _lookalike(rng: random.Random) -> str:
    invalid = "4" + "".join(rng.choice(string.digits) for _ in range(15))
    while luhn_valid(invalid):
        invalid = invalid[:-1] + str((int(invalid[-1]) + 1) % 10)
    return rng.choice(LOOKALIKE_TEMPLATES).format(
        o=rng.randint(1000, 99_999_999), o2=rng.randint(10, 9999),
        d=rng.choice([f"{rng.randint(2020, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                      f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2020, 2027)}",
                      f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{rng.randint(2020, 2027)}"]),
        t=f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        p=rng.choice([f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                      f"{rng.randint(1, 999)},{rng.randint(0, 99):02d} €", f"R$ {rng.randint(10, 9999)},00"]),
        k=rng.choice([f"1Z{rng.randint(100, 999)}AA1{rng.randint(10**10, 10**11 - 1)}",
                      f"RR{rng.randint(10**8, 10**9 - 1)}CN", invalid]),
        r=f"{rng.randint(10**11, 10**12 - 1)}")


def generate(n: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.25:
            value, region = _phone(rng)
            kind = "PHONE"
        elif roll < 0.45:
            value, region, kind = _email(rng), rng.choice(REGIONS), "EMAIL"
        elif roll < 0.6:
            value, region, kind = _card(rng), "US", "CARD"
        elif roll < 0.7:
            value, region, kind = _iban(rng), "DE", "IBAN"
        else:
            text = _lookalike(rng)
            out.append(Sample(text, [], rng.choice(REGIONS)))
            continue
        template = rng.choice(TEMPLATES[rng.choice(list(TEMPLATES))])
        text = template.replace("{x}", value)
        start = text.index(value)
        out.append(Sample(text, [(kind, start, start + len(value))], region))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    samples = generate(a.samples, a.seed)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses: list[str] = []
    started = time.perf_counter()
    for s in samples:
        got = {(f.kind, f.start, f.end) for f in detect(s.text, s.region)}
        want = set(s.spans)
        for kind, *_ in got & want:
            tp[kind] += 1
        for kind, *_ in got - want:
            fp[kind] += 1
            misses.append(f"  false {kind}: {s.text!r} ({s.region})")
        for kind, *_ in want - got:
            fn[kind] += 1
            misses.append(f"  missed {kind}: {s.text!r} ({s.region})")
    elapsed = time.perf_counter() - started
    baseline = re.compile(r"\S+@\S+|\+?\d[\d ()-]{7,}\d")
    t = time.perf_counter()
    for s in samples:
        baseline.findall(s.text)
    base_elapsed = time.perf_counter() - t
    negatives = sum(1 for s in samples if not s.spans)
    print(f"convmem PII benchmark: {len(samples)} messages ({negatives} look-alikes with no PII), seed {a.seed}")
    print(f"{'kind':<8}{'support':>9}{'precision':>11}{'recall':>9}")
    for kind in ("PHONE", "EMAIL", "CARD", "IBAN"):
        support = tp[kind] + fn[kind]
        precision = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else float("nan")
        recall = tp[kind] / support if support else float("nan")
        print(f"{kind:<8}{support:>9}{precision:>11.3f}{recall:>9.3f}")
    extra = sorted(set(fp) - {"PHONE", "EMAIL", "CARD", "IBAN"})
    for kind in extra:
        print(f"{kind:<8}{0:>9}  {fp[kind]} false positives")
    print(f"detector: {len(samples) / elapsed:,.0f} messages/s ({elapsed / len(samples) * 1e6:.0f} us each); "
          f"baseline one-regex scan: {len(samples) / base_elapsed:,.0f} messages/s")
    if misses:
        print(f"first errors ({len(misses)} in all):")
        print("\n".join(misses[:15]))


if __name__ == "__main__":
    main()
