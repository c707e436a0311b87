"""The hand-written guides: README.md, benchmarks/README.md and the topic pages in docs/.

Every relative link points to a file of the checkout (and, into a Markdown page, to a heading it has); each page stays
the size of a guide (the README ≤ 12 KB, a topic page ≤ 10 KB not counting the generated schema table); the README's
test command is the one CI runs (`.ci/run`)."""

import re
from pathlib import Path

import pytest

from unlearning.common import schema

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_BYTES = 12 * 1024          # issue 31: the README is a guide
PAGE_MAX_BYTES = 10 * 1024            # a topic page (and benchmarks/README.md, an index)
TEST_COMMAND = "python -m pytest"     # what .ci/run runs, and the README prints

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def links(text: str) -> list[str]:
    """The link targets of a Markdown text, outside code blocks and code spans."""
    return LINK.findall(CODE.sub("", FENCE.sub("", text)))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    text = CODE.sub(lambda m: m.group(0).strip("`"), heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def test_link_parsing_and_slugs_on_a_known_panel():
    text = "see [a](docs/a.md#the-b) and `[no](x.md)`\n```\n[no](y.md)\n```\n[c](https://e.org) [d](#top)"
    assert links(text) == ["docs/a.md#the-b", "https://e.org", "#top"]
    assert slug("Runs: the journal and `--bench-resume`") == "runs-the-journal-and---bench-resume"
    assert slug("Choices the papers leave open") == "choices-the-papers-leave-open"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path):
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):                   # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: {dest.relative_to(ROOT)} has no heading with anchor #{anchor}")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links: {broken}"


def test_every_topic_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert [p.name for p in PAGES[2:] if p.resolve() not in linked] == []


def test_the_guides_stay_short():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_bytes()) for p in PAGES}
    sizes["docs/schema.md"] -= len(schema.markdown_table().encode())      # the generated table is a reference
    assert sizes.pop("README.md") <= README_MAX_BYTES
    assert {k: v for k, v in sizes.items() if v > PAGE_MAX_BYTES} == {}


def test_the_readme_prints_the_test_command_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"```bash\n{TEST_COMMAND}\n```" in readme
    assert re.search(rf"^{re.escape(TEST_COMMAND)}$", ci, re.M), ".ci/run no longer runs the README's test command"


def test_the_generated_report_s_link_into_the_readme_has_its_heading():
    """The report (reports/README.md) links `README.md#choices-the-papers-leave-open`: the heading stays."""
    assert "choices-the-papers-leave-open" in anchors(ROOT / "README.md")
