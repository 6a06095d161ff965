"""Detecting personal data in message text, offline: e-mail addresses, payment cards (Luhn
and issuer ranges), IBANs (ISO 13616 mod-97), IP addresses, and phone numbers in
international and local formats (Google's libphonenumber rules, local numbers read with the
tenant's default region). Each finding is replaced by a typed placeholder.

Order matters: cards and IBANs are found before phones, so their digits are not read as
phone numbers, and look-alikes (dates, prices, order and tracking numbers) are rejected by
the validity checks rather than by guessing."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass

import phonenumbers

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "CARD": "<CARD>", "IBAN": "<IBAN>", "IP": "<IP>", "PHONE": "<PHONE>"}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d+-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# IBAN lengths per country (ISO 13616 registry); unknown countries only need the checksum.
_IBAN_LENGTH = {"AD": 24, "AT": 20, "BE": 16, "BG": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
                "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
                "IE": 22, "IS": 26, "IT": 27, "LT": 20, "LU": 20, "LV": 21, "MT": 31, "NL": 18, "NO": 15,
                "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26, "AE": 23}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_issuer(d: str) -> bool:
    """Issuer ranges of the major networks: Luhn alone passes one random number in ten."""
    n, two, four = len(d), int(d[:2]), int(d[:4])
    return ((d[0] == "4" and n in (13, 16, 19)) or (51 <= two <= 55 and n == 16)
            or (2221 <= four <= 2720 and n == 16) or (two in (34, 37) and n == 15)
            or ((d.startswith("6011") or d.startswith("65") or 644 <= int(d[:3]) <= 649) and 16 <= n <= 19)
            or (3528 <= four <= 3589 and 16 <= n <= 19) or (two in (36, 38, 30) and n == 14)
            or (d.startswith("62") and 16 <= n <= 19))


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if _IBAN_LENGTH.get(s[:2], len(s)) != len(s) or not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _free(taken: list[Finding], start: int, end: int) -> bool:
    return all(end <= f.start or start >= f.end for f in taken)


def detect(text: str, region: str = "US") -> list[Finding]:
    found: list[Finding] = []
    for m in _EMAIL.finditer(text):
        found.append(Finding("EMAIL", m.start(), m.end()))
    for m in _IBAN.finditer(text):
        if _free(found, m.start(), m.end()) and iban_valid(m.group()):
            found.append(Finding("IBAN", m.start(), m.end()))
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if _free(found, m.start(), m.end()) and 13 <= len(digits) <= 19 and _card_issuer(digits) \
                and luhn_valid(digits):
            found.append(Finding("CARD", m.start(), m.end()))
    for m in _IPV4.finditer(text):
        if _free(found, m.start(), m.end()) and _ip(m.group()):
            found.append(Finding("IP", m.start(), m.end()))
    for m in _IPV6.finditer(text):
        if m.group().count(":") >= 2 and _free(found, m.start(), m.end()) and _ip(m.group()):
            found.append(Finding("IP", m.start(), m.end()))
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if _free(found, match.start, match.end):
            found.append(Finding("PHONE", match.start, match.end))
    return sorted(found, key=lambda f: f.start)


def _ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def scrub(text: str, region: str = "US") -> tuple[str, dict[str, int]]:
    """The text with each finding replaced by its placeholder, and the count per kind."""
    findings = detect(text, region)
    out, last = [], 0
    for f in findings:
        out += [text[last:f.start], PLACEHOLDERS[f.kind]]
        last = f.end
    out.append(text[last:])
    return "".join(out), dict(Counter(f.kind for f in findings))
