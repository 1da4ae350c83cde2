"""Writes the README's fenced blocks of one language to DIR/<n>.<ext>, in order; prints the
count. Used by .ci/readme.sh. A C block without main() is wrapped in one, as tests/readme.rs
does."""
import os
import re
import sys

lang, out = sys.argv[1], sys.argv[2]
ext = {"sh": "sh", "go": "go", "js": "js", "cmake": "cmake", "c": "c"}[lang]
text = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
blocks = re.findall(r"^```" + re.escape(lang) + r"\n(.*?)^```", text, re.S | re.M)
os.makedirs(out, exist_ok=True)
for i, body in enumerate(blocks):
    if lang == "c" and "main(" not in body:
        body = ("#include <stdio.h>\n#include \"pan_offline.h\"\n\nint main(void) {\n"
                + body + "    return 0;\n}\n")
    with open(os.path.join(out, f"{i}.{ext}"), "w", encoding="utf-8") as f:
        f.write(body)
print(len(blocks))
