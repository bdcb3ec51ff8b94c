#!/usr/bin/env python3
"""Generates the malformed safetensors corpus used by the IO and CLI tests.

Every file here must be rejected by a safetensors reader (TaskMerge: BadInputException, CLI exit
code 2). Python 3 standard library only. Run from any directory:

    python3 make_malformed.py

It rewrites every *.safetensors file next to this script (deterministic output) and lists what
each one breaks in README.md.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = []  # (file name, description, bytes)


def case(name, description, content):
    CASES.append((name + ".safetensors", description, content))


def raw(header, data=b"", length=None):
    """8-byte little-endian header length + header bytes + data. `length` overrides N."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def hdr(entries, metadata=None):
    """Header JSON from a list of (name, entry) pairs (a list, so duplicate names are possible)."""
    parts = []
    if metadata is not None:
        parts.append('"__metadata__":' + json.dumps(metadata, separators=(",", ":")))
    for name, entry in entries:
        value = entry if isinstance(entry, str) else json.dumps(entry, separators=(",", ":"))
        parts.append(json.dumps(name) + ":" + value)
    return "{" + ",".join(parts) + "}"


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


F32x2 = struct.pack("<2f", 1.0, 2.0)  # 8 bytes
F32x4 = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)  # 16 bytes
OK_META = {"format": "pt"}

# --- framing -------------------------------------------------------------------------------
case("empty_file", "0 bytes: no header length at all", b"")
case("truncated_4_bytes", "4 bytes: shorter than the 8-byte header length", b"\x10\x00\x00\x00")
case("header_len_zero", "header length N = 0", struct.pack("<Q", 0) + F32x2)
case("header_len_beyond_file", "header length N larger than the rest of the file",
     raw(hdr([("a", t("F32", [2], 0, 8))]), F32x2, length=4096))
case("header_len_over_cap", "header length N = 200 MB, over the 100 MB cap",
     raw(hdr([("a", t("F32", [2], 0, 8))]), F32x2, length=200_000_000))
case("header_len_huge", "header length N = 2^64-1 (negative as a signed integer)",
     raw(hdr([("a", t("F32", [2], 0, 8))]), F32x2, length=2**64 - 1))

# --- header text ---------------------------------------------------------------------------
case("header_invalid_utf8", "header bytes are not valid UTF-8",
     raw(b'{"a\xff\xfe":' + json.dumps(t("F32", [2], 0, 8)).encode() + b"}", F32x2))
case("header_not_json", "header starts with '{' but is not JSON", raw("{this is not json}", F32x2))
case("header_json_truncated", "header JSON cut off in the middle", raw('{"a":{"dtype":"F32",', F32x2))
case("header_json_array", "header is a JSON array, not an object", raw("[1, 2, 3]"))
case("header_json_string", "header is a JSON string, not an object", raw('"hello"'))
case("header_leading_space", "header does not start with '{' (leading space)",
     raw(" " + hdr([("a", t("F32", [2], 0, 8))]), F32x2))
case("header_trailing_garbage", "valid JSON object followed by non-space bytes in the header",
     raw(hdr([("a", t("F32", [2], 0, 8))]) + "xx", F32x2))

# --- entries -------------------------------------------------------------------------------
case("entry_not_object", "tensor entry is a list, not an object", raw(hdr([("a", [1, 2])]), F32x2))
case("missing_dtype", "tensor entry without dtype",
     raw(hdr([("a", {"shape": [2], "data_offsets": [0, 8]})]), F32x2))
case("missing_shape", "tensor entry without shape",
     raw(hdr([("a", {"dtype": "F32", "data_offsets": [0, 8]})]), F32x2))
case("missing_data_offsets", "tensor entry without data_offsets",
     raw(hdr([("a", {"dtype": "F32", "shape": [2]})]), F32x2))
case("extra_key_in_entry", "tensor entry with an unexpected key",
     raw(hdr([("a", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1})]), F32x2))
case("unknown_dtype", "dtype string that is not a safetensors dtype", raw(hdr([("a", t("FLOAT32", [2], 0, 8))]), F32x2))
case("unsupported_dtype_f8", "F8_E4M3 dtype (valid safetensors, not supported here)",
     raw(hdr([("a", t("F8_E4M3", [8], 0, 8))]), F32x2))
case("dtype_not_string", "dtype is a number", raw(hdr([("a", t(32, [2], 0, 8))]), F32x2))
case("shape_not_list", "shape is an integer, not a list", raw(hdr([("a", t("F32", 2, 0, 8))]), F32x2))
case("shape_negative", "negative dimension in shape", raw(hdr([("a", t("F32", [-2], 0, 8))]), F32x2))
case("shape_float_dim", "non-integer dimension in shape", raw(hdr([("a", t("F32", [2.5], 0, 8))]), F32x2))
case("shape_overflow", "shape whose element count overflows 64 bits",
     raw(hdr([("a", t("F32", [2**40, 2**40], 0, 8))]), F32x2))
case("shape_dtype_span_mismatch", "shape x dtype size (16 bytes) differs from data_offsets span (8)",
     raw(hdr([("a", t("F32", [4], 0, 8))]), F32x2))
case("data_offsets_three_entries", "data_offsets with 3 entries",
     raw(hdr([("a", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]})]), F32x2))
case("data_offsets_not_list", "data_offsets is an object",
     raw(hdr([("a", {"dtype": "F32", "shape": [2], "data_offsets": {"begin": 0, "end": 8}})]), F32x2))
case("data_offsets_negative", "negative data offset",
     raw(hdr([("a", t("F32", [2], -8, 0))]), F32x2))
case("data_offsets_begin_gt_end", "data_offsets begin greater than end",
     raw(hdr([("a", t("F32", [0], 8, 0))]), F32x2))
case("offsets_out_of_bounds", "tensor ends past the end of the file",
     raw(hdr([("a", t("F32", [4], 0, 16))]), F32x2))

# --- layout --------------------------------------------------------------------------------
case("overlapping_tensors", "two tensors share bytes",
     raw(hdr([("a", t("F32", [2], 0, 8)), ("b", t("F32", [2], 4, 12))]), F32x4[:12]))
case("hole_between_tensors", "unused bytes between two tensors",
     raw(hdr([("a", t("F32", [1], 0, 4)), ("b", t("F32", [2], 8, 16))]), F32x4))
case("first_tensor_not_at_zero", "data section does not start with a tensor",
     raw(hdr([("a", t("F32", [2], 8, 16))]), F32x4))
case("trailing_bytes", "bytes after the last tensor", raw(hdr([("a", t("F32", [2], 0, 8))]), F32x4))
case("no_tensors_but_data", "no tensors listed but the data section is not empty", raw(hdr([], OK_META), F32x2))
case("duplicate_tensor_names", "the same tensor name twice in the header",
     raw(hdr([("a", t("F32", [2], 0, 8)), ("a", t("F32", [2], 8, 16))]), F32x4))

# --- metadata ------------------------------------------------------------------------------
case("metadata_non_string_value", "__metadata__ holds a number",
     raw(hdr([("a", t("F32", [2], 0, 8))], {"format": "pt", "step": 5}), F32x2))
case("metadata_not_object", "__metadata__ is a list",
     raw(hdr([("a", t("F32", [2], 0, 8))], ["format", "pt"]), F32x2))


def main():
    for name in os.listdir(HERE):
        if name.endswith(".safetensors"):
            os.remove(os.path.join(HERE, name))
    lines = ["# Malformed safetensors corpus", "",
             "Generated by `make_malformed.py` (do not edit by hand). Every file must be rejected",
             "(BadInputException / CLI exit code 2) with a one-line message naming the file.", "",
             "| file | problem |", "|---|---|"]
    for name, description, content in CASES:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(content)
        lines.append(f"| `{name}` | {description} |")
    with open(os.path.join(HERE, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} files to {HERE}")


if __name__ == "__main__":
    main()
