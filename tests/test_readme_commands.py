"""The commands README.md and pipelines/results/README.md show still parse against the command
line (nothing is run), and their links point to files that exist.

Every ``eegmtl ...`` and ``python pipelines/<script>.py ...`` line of their fenced code blocks,
and every inline code span that is such a command in full, goes through the parser of its
command; a method name given to ``--methods`` must resolve in the registry. Spans written in
README notation (``...``, ``<placeholder>``, ``[--optional]``, ``a|b``) are not commands and are
skipped.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from eegmtl import cli
from eegmtl.evaluation.methods import method_error
from eegmtl.experiments import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
#: the documents whose commands are checked: the README and the detailed results
DOCS = (ROOT / "README.md", ROOT / "pipelines" / "results" / "README.md")
SCRIPTS = {c.script: name for name, c in COMMANDS.items() if c.script}


def _fenced_lines(text: str) -> list[tuple[int, str]]:
    out, inside, buf, start = [], False, "", 0
    for no, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        line = line.split(" # ")[0].rstrip()
        if buf:
            buf += " " + line.strip()
        else:
            buf, start = line.strip(), no
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        out.extend((start, part.strip()) for part in buf.split(" ; "))
        buf = ""
    return out


def _inline_spans(text: str) -> list[tuple[int, str]]:
    # fenced blocks blanked (line numbers kept), so that their backticks pair with nothing
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text,
                  flags=re.M | re.S)
    out = []
    for m in re.finditer(r"`([^`]+)`", text):
        span = " ".join(m.group(1).split())
        # a command in full, not a mention of one in the prose (`eegmtl select-best`)
        if re.match(r"(eegmtl|python pipelines/)\S* ", span) and len(span.split()) >= 5:
            out.append((text.count("\n", 0, m.start()) + 1, span))
    return out


def _commands() -> list[tuple[str, int, list[str]]]:
    found = []
    for doc in DOCS:
        found.extend((str(doc.relative_to(ROOT)), no, words) for no, words in _doc_commands(doc))
    return found


def _doc_commands(doc: Path) -> list[tuple[int, list[str]]]:
    text = doc.read_text(encoding="utf-8")
    found = []
    for no, cmd in _fenced_lines(text) + _inline_spans(text):
        cmd = re.sub(r"^(?:[A-Z_]+=\S+ )+", "", cmd)  # environment assignments
        if "..." in cmd or "<" in cmd or "|" in cmd or re.search(
                r"\[--|\w\[_|\[A\]|\bNAME\b", cmd):
            continue  # README notation (placeholders, optional parts), not a command
        try:
            words = shlex.split(cmd)
        except ValueError:
            continue
        if words and words[0] in ("eegmtl", "python") and (
                words[0] == "eegmtl" or words[1].startswith("pipelines/")):
            found.append((no, words))
    return found


COMMAND_LINES = _commands()


def _parse(words: list[str]) -> tuple[str, object]:
    """(command name, parsed namespace) as the command would see its arguments."""
    if words[0] == "python":
        name = SCRIPTS.get(Path(words[1]).name)
        if name is None:
            pytest.skip(f"{words[1]} is not a command's script")
        return name, build_parser(name, prog=words[1]).parse_args(words[2:])
    args, rest = cli.build_parser().parse_known_args(words[1:])
    if args.command in COMMANDS:
        return args.command, build_parser(args.command, prog="eegmtl").parse_args(rest)
    if args.command == "bench":
        name = cli.BENCHES[args.which]
        return name, build_parser(name, prog="eegmtl bench").parse_args(rest)
    assert not rest, f"unrecognized arguments {rest}"
    return str(args.command), args


def test_the_readme_shows_commands() -> None:
    for doc in DOCS:
        assert sum(d == str(doc.relative_to(ROOT)) for d, _, _ in COMMAND_LINES) > 20, doc


@pytest.mark.parametrize(("doc", "line", "words"), COMMAND_LINES,
                         ids=[f"{Path(d).parent.name or 'root'}:L{no}"
                              for d, no, _ in COMMAND_LINES])
def test_readme_command_parses(doc: str, line: int, words: list[str]) -> None:
    try:
        name, args = _parse(words)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            return
        pytest.fail(f"{doc} line {line}: `{shlex.join(words)}` does not parse ({exc})")
    for method in getattr(args, "methods", None) or []:
        if name in ("sd", "si", "benchmark", "moabb-si", "ablations"):
            assert method_error(method) is None, (
                f"{doc} line {line}: unknown method {method!r}: {method_error(method)}")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_readme_links_point_to_files_and_headings_that_exist(doc: Path) -> None:
    """Every relative link or image of the document names a file of the repository, and a
    ``#anchor`` a heading of its target (GitHub's anchors: lower case, punctuation dropped,
    spaces to hyphens)."""
    text = doc.read_text(encoding="utf-8")
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md":
            heads = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), flags=re.M)
            anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                       for h in heads}
            if anchor not in anchors:
                bad.append(f"{target} (no heading #{anchor})")
    assert not bad, f"{doc.relative_to(ROOT)}: broken links: {bad}"
