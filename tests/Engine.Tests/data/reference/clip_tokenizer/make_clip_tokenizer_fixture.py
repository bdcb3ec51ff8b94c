#!/usr/bin/python3
"""Token ids recorded from CLIP's tokenizer semantics for ClipTokenizerTests, on a synthetic vocabulary.

1. Learns a small BPE (400 merges) on a fixed corpus of CLIP prompt words, and writes it in the Hugging
   Face CLIPTokenizer file layout: vocab.json (the 256 byte symbols, the same with "</w>", one token per
   merge, then <|startoftext|> and <|endoftext|>, in that order, as OpenAI's simple_tokenizer builds its
   encoder) and merges.txt ("#version: 0.2" header, one "a b" pair per line, in rank order).
2. Encodes tricky strings with an independent implementation of OpenAI CLIP's simple_tokenizer.py
   (the reference for open_clip and task-vectors) minus ftfy: html.unescape twice, strip, whitespace
   clean, lower, the word regex with \\p{L}/\\p{N} (needs the `regex` module: Debian python3-regex),
   UTF-8 bytes through bytes_to_unicode, BPE with "</w>" on the last symbol, and
   [<|startoftext|>] + ids + [<|endoftext|>] truncated to 77 with the last id forced to <|endoftext|>
   (open_clip's tokenize; HF's truncation=True, max_length=77 gives the same ids). Writes expected.json.

Usage (run from this directory): python3 make_clip_tokenizer_fixture.py
"""

import html
import json
from collections import Counter

import regex as re


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
PATTERN = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)

CORPUS = """a photo of a {}. a bad photo of the {}. a low resolution photo of a {}. a cropped photo of my {}.
a bright photo of the {}. a dark photo of a {}. a black and white photo of the {}. a centered satellite photo of {}.
annual crop land forest herbaceous vegetation highway industrial buildings pasture permanent river sea lake
residential the number zero one two three four five six seven eight nine street view house numbers
a photo of a dog cat car airplane bird ship truck horse deer frog a photo of the big small large
texture banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted
fibrous flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled
traffic sign speed limit stop yield no entry children crossing road work pedestrians bicycles
stanford cars audi bmw tesla model sedan coupe convertible hatchback 2012 2007 suv abbey airport
it's a photo that's what we're they've i'm you'll he'd don't can't café naïve résumé""".lower()


def learn_merges(text, count):
    words = Counter(re.findall(PATTERN, text))
    vocab = {tuple(BYTE_ENCODER[b] for b in w.encode("utf-8")[:-1]) + (BYTE_ENCODER[w.encode("utf-8")[-1]] + "</w>",): c
             for w, c in words.items()}
    merges = []
    while len(merges) < count:
        pairs = Counter()
        for word, c in vocab.items():
            for a, b in zip(word, word[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new_vocab = {}
        for word, c in vocab.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_vocab[tuple(out)] = c
        vocab = new_vocab
    return merges


class SimpleTokenizer:
    def __init__(self, merges):
        symbols = list(BYTE_ENCODER.values())
        tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {t: i for i, t in enumerate(tokens)}
        self.ranks = {m: i for i, m in enumerate(merges)}

    def bpe(self, token):
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            ranked = [(self.ranks[p], p) for p in zip(word, word[1:]) if p in self.ranks]
            if not ranked:
                break
            first, second = min(ranked)[1]
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text):
        text = html.unescape(html.unescape(text)).strip()
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for piece in re.findall(PATTERN, text):
            piece = "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(piece))
        return ids

    def tokenize(self, text, context_length=77):
        ids = [self.encoder["<|startoftext|>"]] + self.encode(text) + [self.encoder["<|endoftext|>"]]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.encoder["<|endoftext|>"]
        return ids


TRICKY = [
    "a photo of a dog.",
    "A  Photo\tOF\n the   CAT!!",
    "  leading and trailing spaces  ",
    "It's a photo; that's what we're told, they've said: I'm sure you'll see (he'd agree).",
    "don't can't won't",
    "numbers 2012 and 3.14159, 1st 22nd",
    "Café naïve résumé façade ÀÉÎÕÜ",
    "emoji 🐕 and ümlaut ß",
    "punctuation ... --- ??? !!! ,,, <<>> [] {} @#$%^&*",
    "html &amp; entities &lt;b&gt; &quot;quoted&quot;",
    "<|startoftext|>special<|endoftext|> tokens in text",
    "a photo of a " + "very " * 80 + "long prompt",
    "",
    "x",
    "satellite imagery of annual crop land.",
    "a centered satellite photo of herbaceous vegetation.",
]


def main():
    merges = learn_merges(CORPUS, 400)
    tok = SimpleTokenizer(merges)
    with open("vocab.json", "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    with open("merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    with open("expected.json", "w", encoding="utf-8") as f:
        json.dump([{"text": t, "ids": tok.tokenize(t)} for t in TRICKY], f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
