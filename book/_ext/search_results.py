"""Sphinx extension: each page once in the search results, snippets from the page's text.

Two faults of Sphinx 7.4's client-side search under Jupyter Book's theme (sphinx-doc/sphinx#11961):

* A query matching a page title listed the page twice: once from the full-text index ("9. Receptive
  field") and once from the index of section titles, where the page's own top-level title is stored
  without the chapter number ("9. Receptive field > Receptive field"). The titles differ, so Sphinx's
  de-duplication kept both. After the build, the page's own title is dropped from the section-title
  index (``alltitles``) of searchindex.js; the full-text index still finds and ranks the page by its
  title words (``titleterms``), and every other section title stays.
* The snippet under each result began with "....pdf": Sphinx extracts the text of ``[role="main"]``,
  which in sphinx-book-theme also holds the page's download menu (.md, .ipynb, .pdf).
  ``search_snippets.js`` (book/_static/) makes the extraction read the article body instead.
"""
import json
import re
from pathlib import Path

_PREFIX = "Search.setIndex("
_SECTION_NUMBER = re.compile(r'<span class="section-number">[^<]*</span>')
_TAG = re.compile(r"<[^>]+>")


def plain_title(title_html: str) -> str:
    """A page title as the section-title index spells it: no chapter number, no markup."""
    return _TAG.sub("", _SECTION_NUMBER.sub("", title_html)).strip()


def drop_page_titles(index: dict) -> int:
    """Remove each page's own title from ``index["alltitles"]``; return how many entries went."""
    own = {i: plain_title(t) for i, t in enumerate(index["titles"])}
    removed = 0
    for title in list(index["alltitles"]):
        kept = [entry for entry in index["alltitles"][title] if own.get(entry[0]) != title]
        removed += len(index["alltitles"][title]) - len(kept)
        if kept:
            index["alltitles"][title] = kept
        else:
            del index["alltitles"][title]
    return removed


def rewrite_search_index(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    path = Path(app.outdir) / "searchindex.js"
    if not path.exists():
        return
    text = path.read_text(encoding="utf8")
    if not (text.startswith(_PREFIX) and text.endswith(")")):
        raise RuntimeError(f"searchindex.js has an unexpected format (starts {text[:30]!r})")
    index = json.loads(text[len(_PREFIX):-1])
    drop_page_titles(index)
    path.write_text(_PREFIX + json.dumps(index, separators=(",", ":"), ensure_ascii=False) + ")",
                    encoding="utf8")


def setup(app):
    app.add_js_file("search_snippets.js", loading_method="defer")
    app.connect("build-finished", rewrite_search_index)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
