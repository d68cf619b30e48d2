"""Writes test/fixtures/json/cases.jsonl for test/test_json.c.

Each line is {"text": <JSON text>, "canonical": <Python's parse re-printed canonically>}
or {"text": ..., "canonical": null} when Python's json module (with NaN/Infinity refused,
as RFC 8259 requires) rejects the text. The canonical form is the one test_json.c prints:
numbers as '%.17g', objects with keys in file order, strings escaped as json_write_string
does (only '"', '\\', \\n, \\r, \\t and other controls as \\u00XX; lone surrogates -> U+FFFD).
"""
import json
import os

class Pairs(list):
    """an object, as its (key, value) pairs in file order"""

def canon(v):
    if v is None: return "null"
    if v is True: return "true"
    if v is False: return "false"
    if isinstance(v, (int, float)): return "%.17g" % (float(v) + 0.0)  # -0 prints as 0: Python reads "-0" as the integer 0
    if isinstance(v, str): return canon_str(v)
    if isinstance(v, Pairs):
        return "{" + ",".join(canon_str(k) + ":" + canon(x) for k, x in v) + "}"
    if isinstance(v, list): return "[" + ",".join(canon(x) for x in v) + "]"

def canon_str(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"': out.append('\\"')
        elif ch == '\\': out.append('\\\\')
        elif ch == '\n': out.append('\\n')
        elif ch == '\r': out.append('\\r')
        elif ch == '\t': out.append('\\t')
        elif c < 0x20: out.append('\\u%04x' % c)
        elif 0xD800 <= c <= 0xDFFF: out.append('\ufffd')
        else: out.append(ch)
    out.append('"')
    return "".join(out)

def reject_constant(name):
    raise ValueError(name)

def python_parse(text):
    try:
        return json.loads(text, object_pairs_hook=Pairs, parse_constant=reject_constant)
    except ValueError:
        return "<invalid>"

cases = [
    '{}', '[]', '0', '-0', '1e5', '-1.25E-3', '123456789012345678901234567890', '0.1',
    '"plain"', '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"', '"\\u00e9\\u4e2d\\ud83d\\ude00"',
    '"caf\u00e9 \u4e2d\u6587 \U0001F600"', '"lone \\ud800 high"', '"lone \\udc00 low"',
    '"\\ud800\\u0041"', '"\\u0000 nul inside"', 'true', 'false', 'null',
    '{"_id": "12", "title": "", "text": "Hello, world."}',
    '{"a": [1, 2, {"b": null}], "c": {"d": [true, false]}}',
    '  {"k" : 1 , "k" : 2}  ', '[[[[[[[[[[]]]]]]]]]]', '{"n": -0.0, "m": 1.7976931348623157e308}',
    '{"query_id": "q1", "doc_a": "d1", "doc_b": "d2", "p": 0.73}',
    # invalid by RFC 8259 (and Python with NaN/Infinity refused)
    '', ' ', '{', '}', '[1,]', '{"a":1,}', '01', '1.', '.5', '+1', '-', '1e', '1e+',
    'NaN', 'Infinity', '-Infinity', '"unterminated', '"bad \\x escape"', '"\\u12"', '"\\u12G4"',
    "{'single': 1}", '{"a" 1}', '{1: 2}', '[1 2]', 'tru', 'nul', '"tab\there"', '"nl\nhere"',
    '{"a": 1} x', '[1] [2]', 'true false',
]
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "test", "fixtures", "json", "cases.jsonl")
with open(out, "w", encoding="utf-8") as f:
    for text in cases:
        v = python_parse(text)
        f.write(json.dumps({"text": text, "canonical": None if v == "<invalid>" else canon(v)},
                           ensure_ascii=True) + "\n")
print("wrote", len(cases), "cases to", os.path.relpath(out))
