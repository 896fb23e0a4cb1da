#!/usr/bin/python3
# Regenerates kimi_pretokenize_golden.json: Kimi-K2's pre-tokenization pattern run by the Python `regex`
# module (VERSION1 set operations, the same leftmost-first semantics as tiktoken's engine), as an
# independent reference for the PCRE2 translation in engine/text/pretokenize.cc.
# Usage: /usr/bin/python3 tests/engine/text/testdata/make_pretokenize_golden.py  (needs python3-regex)
import json
import os
import random

import regex

PAT = "|".join([
    r"[\p{Han}]+",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])
RX = regex.compile("(?V1)" + PAT)

FIXED = [
    "Hello, world! This is a test.",
    "你好世界！这是一段中文文本。",
    "Kimi-K2分词器汉字切分",
    "ABCdef GHI jkl MNOpqr",
    "I'm you're we've they'll she'd it's DON'T WON'T I'M",
    "12345678 3.14159 1,000,000",
    "   leading and trailing   ",
    "line1\nline2\r\n\r\nline3\n\n\n  indented",
    "tabs\tand\t\ttabs",
    "日本語のひらがなとカタカナ、漢字が混ざる文章です。",
    "한국어 문장도 있습니다.",
    "Привет, мир! Ελληνικά κείμενα.",
    "naïve café résumé — e\u0301 combining a\u0300\u0301",
    "\u01c5ungla \u01c4Z titlecase \u01c6",
    "modifier \u02b0\u02b1 letters",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "العربية ٣٤٥ digits",
    "ภาษาไทย มี สระ",
    "superscript x² roman Ⅻ fullwidth １２３",
    "ideographic\u3000space and nbsp\u00a0here\u2028line",
    "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"北京\",\"days\":3}}",
    "<|im_end|> looks special but is text",
    "   \n   \n",
    "a",
    " ",
    "\n",
    "x  \n",
    "中a中A中",
    "Hello世界World",
    "'s 'S 'll",
    "...!!!???",
    "    def f(x):\n        return x**2  # comment\n",
]

POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        list(" \t\n\r  .,;:!?'\"-_()[]{}<>|/\\@#$%^&*+=~`") +
        list("你好世界中文字漢") + list("ひらがなカタカナー") + list("한국어") + list("Привет") + list("αβγΔ") +
        ["\u0301", "\u0300", "\u0308", "\u01c5", "\u02b0", "😀", "👍", "\u200d", "٣", "²", "Ⅻ", "１", "\u3000",
         "\u00a0", "\u2028", "\u0e21", "\u0e35", "ß", "ǅ", "ﬁ", "'s", "'T", "\r\n", "  "])


def main():
    rng = random.Random(20260722)
    texts = list(FIXED)
    for _ in range(300):
        n = rng.randint(1, 40)
        texts.append("".join(rng.choice(POOL) for _ in range(n)))
    cases = [{"text": t, "pieces": RX.findall(t)} for t in texts]
    for c in cases:
        assert "".join(c["pieces"]) == c["text"], c  # the pattern covers every character
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kimi_pretokenize_golden.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
