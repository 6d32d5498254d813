"""Sphinx extension: keep executed cell outputs offline.

matplotlib's ``Animation.to_jshtml()`` embeds
``<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css">``
for its player buttons. The site must work with no internet (tests/test_website.py fails on any request
outside the site), so that link is removed from every raw HTML output. The buttons keep their icons:
the theme (pydata-sphinx-theme) already loads Font Awesome locally (``_static/scripts/fontawesome.js``),
which renders the same ``fa fa-play`` / ``fa-step-forward`` ... classes.
"""
import re

from docutils import nodes

_CDN_LINK = re.compile(
    r"<link\b[^>]*href=[\"']https?://(?:maxcdn|stackpath)\.bootstrapcdn\.com/font-awesome/[^\"']*[\"'][^>]*>",
    re.IGNORECASE)


def strip_cdn_links(app, doctree, docname):
    for node in list(doctree.findall(nodes.raw)):
        if "html" not in node.get("format", "").split():
            continue
        text = node.astext()
        if _CDN_LINK.search(text):
            node[0] = nodes.Text(_CDN_LINK.sub("", text))


def setup(app):
    app.connect("doctree-resolved", strip_cdn_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
